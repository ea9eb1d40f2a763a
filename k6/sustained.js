// Sustained high traffic: VUS busy visitors, RATE page views per second in total (default 200,
// i.e. 2 per visitor per second), held for DURATION. Legitimate load at a high level: a
// detector that learns its baseline from this should not ban anybody.
//
//   k6 run --local-ips 198.18.0.1-198.18.0.100 -e VUS=100 -e RATE=200 -e DURATION=5m k6/sustained.js
//
// Bounds: DURATION; per VU at most DURATION / (interval / 2) + 1 iterations.

import { TIMEOUT, dur, guard, maxIterations, num, pace, pageView, seconds } from './lib.js';

const VUS = Math.ceil(num('VUS', 100));
const RATE = num('RATE', 200);
const DURATION = dur('DURATION', '5m');
const INTERVAL = VUS / RATE;
const PER_VU = Math.ceil(seconds(DURATION) / (INTERVAL / 2)) + 1;
const LIMIT = maxIterations(VUS * PER_VU);

export const options = {
  scenarios: {
    sustained: {
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
  pageView({ scenario_kind: 'sustained' });
  pace(started, INTERVAL);
}
