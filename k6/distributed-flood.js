// Distributed flood (botnet): VUS bots, RATE requests per second in total (default 400, i.e. 2
// per bot per second, each far above a visitor's pace), on expensive-looking paths, for DURATION.
// Give each bot its own address: --local-ips with at least VUS addresses.
//
//   k6 run --local-ips 198.18.2.1-198.18.2.200 -e VUS=200 -e RATE=400 -e DURATION=30s k6/distributed-flood.js
//
// Bounds: DURATION; per VU at most DURATION / (interval / 2) + 1 iterations.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { TARGET, TIMEOUT, dur, guard, maxIterations, num, pace, seconds } from './lib.js';

const VUS = Math.ceil(num('VUS', 200));
const RATE = num('RATE', 400);
const DURATION = dur('DURATION', '30s');
const INTERVAL = VUS / RATE;
const PER_VU = Math.ceil(seconds(DURATION) / (INTERVAL / 2)) + 1;
const LIMIT = maxIterations(VUS * PER_VU);
const BOT_AGENTS = ['Go-http-client/1.1', 'python-requests/2.31.0', 'curl/8.5.0', 'Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1)'];
const PATHS = ['/', '/search?q=%25%25%25', '/products?page=999', '/api/cart', '/login'];

export const options = {
  scenarios: {
    botnet: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: PER_VU,
      maxDuration: DURATION,
      gracefulStop: `${seconds(TIMEOUT) + 1}s`,
    },
  },
};

export default function () {
  guard(LIMIT);
  const started = Date.now();
  const res = http.get(`${TARGET}${PATHS[exec.vu.iterationInScenario % PATHS.length]}`, {
    headers: { 'User-Agent': BOT_AGENTS[(exec.vu.idInTest - 1) % BOT_AGENTS.length] },
    timeout: TIMEOUT,
    tags: { role: 'bot', name: 'botnet' },
  });
  check(res, { 'bot 200': (r) => r.status === 200 });
  pace(started, INTERVAL);
}
