// Login brute force: POST /login (form user + password) at a modest RATE (default 3.3 per
// second) for DURATION from whatever --local-ips offers (one address: one attacker). The test
// nginx answers every POST with 401, so the attacker is all errors: bouncer's error-surge rule
// lowers its thresholds for it (k = error_surge_factor), which is what bans it at a rate that
// alone would not be banned.
//
//   k6 run --local-ips 198.18.1.66 -e RATE=3.3 -e DURATION=1m k6/brute-force.js
//
// Bounds: RATE × DURATION iterations (arrival rate), at most RATE × TIMEOUT + 5 VUs.

import http from 'k6/http';
import { check } from 'k6';
import { TARGET, TIMEOUT, dur, guard, maxIterations, num, pick, seconds } from './lib.js';

const RATE = num('RATE', 3.3);
const DURATION = dur('DURATION', '1m');
const LOGIN = __ENV.LOGIN_PATH || '/login';
const PER_10S = Math.max(1, Math.round(RATE * 10));
const MAX_VUS = Math.ceil(RATE * seconds(TIMEOUT)) + 5;
const LIMIT = maxIterations(Math.ceil((PER_10S / 10) * seconds(DURATION)) + 1);
const USERS = ['admin', 'root', 'administrator', 'user', 'test', 'info', 'support', 'webmaster'];

export const options = {
  scenarios: {
    brute: {
      executor: 'constant-arrival-rate',
      rate: PER_10S,
      timeUnit: '10s',
      duration: DURATION,
      preAllocatedVUs: Math.min(MAX_VUS, 10),
      maxVUs: MAX_VUS,
      gracefulStop: `${seconds(TIMEOUT) + 1}s`,
    },
  },
};

export default function () {
  guard(LIMIT);
  const password = Math.random().toString(36).slice(2, 10);
  const res = http.post(
    `${TARGET}${LOGIN}`,
    { user: pick(USERS), password },
    {
      headers: { 'User-Agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' },
      timeout: TIMEOUT,
      tags: { role: 'brute', name: 'login' },
    },
  );
  check(res, { 'login rejected (401)': (r) => r.status === 401 });
}
