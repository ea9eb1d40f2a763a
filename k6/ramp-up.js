// Ramp-up: visitors arrive steadily from 1 to VUS over RAMP, stay for HOLD, then leave over 10 s.
// Each visitor browses like in normal.js; at the top the site sees RATE page views per second.
//
//   k6 run --local-ips 198.18.0.1-198.18.0.100 -e VUS=100 -e RATE=50 -e RAMP=1m -e HOLD=30s k6/ramp-up.js
//
// Bounds: the stages' total duration; at most VUS × that / (interval / 2) iterations in all.

import { TIMEOUT, dur, guard, maxIterations, num, pace, pageView, seconds } from './lib.js';

const VUS = Math.ceil(num('VUS', 100));
const RATE = num('RATE', 50); // page views per second at the top, all visitors together
const RAMP = dur('RAMP', '1m');
const HOLD = dur('HOLD', '30s');
const INTERVAL = VUS / RATE;
const TOTAL_SECS = seconds(RAMP) + seconds(HOLD) + 10;
const LIMIT = maxIterations(VUS * (Math.ceil(TOTAL_SECS / (INTERVAL / 2)) + 1));

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      startVUs: 1,
      stages: [
        { duration: RAMP, target: VUS },
        { duration: HOLD, target: VUS },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: `${seconds(TIMEOUT) + 1}s`,
      gracefulStop: `${seconds(TIMEOUT) + 1}s`,
    },
  },
};

export default function () {
  guard(LIMIT);
  const started = Date.now();
  pageView({ scenario_kind: 'ramp-up' });
  pace(started, INTERVAL);
}
