// One-IP flood: RATE requests per second (default 100) for DURATION from a single client, with
// one bot user agent, on FLOOD_PATH (default /). Pin the source with --local-ips ONE_ADDRESS: without
// it the source is the loopback address, which bouncer never bans.
//
//   k6 run --local-ips 198.18.1.7 -e RATE=100 -e DURATION=30s -e TIMEOUT=1s k6/flood-one-ip.js
//
// Once the source is banned (DROP), every request fails after TIMEOUT: the `http_reqs` points of
// `--out json=FILE` then carry status 0, which is how the end-to-end test times the ban.
// Bounds: RATE × DURATION iterations (arrival rate), at most RATE × TIMEOUT + 10 VUs in flight.

import http from 'k6/http';
import { check } from 'k6';
import { TARGET, TIMEOUT, dur, guard, maxIterations, num, seconds } from './lib.js';

const RATE = num('RATE', 100);
const DURATION = dur('DURATION', '30s');
const PATH = __ENV.FLOOD_PATH || '/';
const AGENT = __ENV.AGENT || 'python-requests/2.31.0';
// Arrival rates are integers per time unit: express fractional rates per 10 s.
const PER_10S = Math.max(1, Math.round(RATE * 10));
const MAX_VUS = Math.ceil(RATE * seconds(TIMEOUT)) + 10;
const LIMIT = maxIterations(Math.ceil((PER_10S / 10) * seconds(DURATION)) + 1);

export const options = {
  scenarios: {
    flood: {
      executor: 'constant-arrival-rate',
      rate: PER_10S,
      timeUnit: '10s',
      duration: DURATION,
      preAllocatedVUs: Math.min(MAX_VUS, 50),
      maxVUs: MAX_VUS,
      gracefulStop: `${seconds(TIMEOUT) + 1}s`,
    },
  },
};

export default function () {
  guard(LIMIT);
  const res = http.get(`${TARGET}${PATH}`, {
    headers: { 'User-Agent': AGENT },
    timeout: TIMEOUT,
    tags: { role: 'flood', name: 'flood' },
  });
  check(res, { 'flood 200': (r) => r.status === 200 });
}
