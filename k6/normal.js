// Normal traffic: VUS visitors, each browsing like a person (a page plus some of its assets,
// then a pause), RATE page views per second in total. Spread the visitors over many source
// addresses with --local-ips (one address per VU, round robin).
//
//   k6 run --local-ips 198.18.0.1-198.18.0.50 -e VUS=50 -e RATE=25 -e DURATION=1m k6/normal.js
//
// Bounds: DURATION (maxDuration), and per VU at most DURATION / (interval / 2) + 1 iterations.

import { TIMEOUT, dur, guard, maxIterations, num, pace, pageView, seconds, staggerStart } from './lib.js';

const VUS = Math.ceil(num('VUS', 50));
const RATE = num('RATE', 25); // page views per second, all visitors together
const DURATION = dur('DURATION', '1m');
const INTERVAL = VUS / RATE; // seconds between one visitor's page views, on average
const PER_VU = Math.ceil(seconds(DURATION) / (INTERVAL / 2)) + 1;
const LIMIT = maxIterations(VUS * PER_VU);

export const options = {
  scenarios: {
    visitors: {
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
  staggerStart(INTERVAL);
  const started = Date.now();
  pageView();
  pace(started, INTERVAL);
}
