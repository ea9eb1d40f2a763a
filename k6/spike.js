// Sudden spike (flash crowd): VUS visitors browse normally; at SPIKE_AT, SPIKE_VUS visitors are
// there within 2 s, stay for SPIKE_FOR, and are gone within 2 s; the test runs DURATION in all.
// Every visitor keeps the normal pace (one page view every VUS / RATE seconds), so the site's
// rate jumps by SPIKE_VUS / VUS while each client stays ordinary — a site-wide anomaly, not a
// per-IP one, as long as --local-ips offers about SPIKE_VUS addresses.
//
//   k6 run --local-ips 198.18.0.1-198.18.0.250 -e VUS=20 -e RATE=10 -e SPIKE_VUS=200 k6/spike.js
//
// Bounds: DURATION; at most SPIKE_VUS × DURATION / (interval / 2) iterations in all.

import { TIMEOUT, dur, guard, maxIterations, num, pace, pageView, seconds } from './lib.js';

const VUS = Math.ceil(num('VUS', 20));
const RATE = num('RATE', 10); // page views per second before the spike
const SPIKE_VUS = Math.ceil(num('SPIKE_VUS', 200));
const DURATION = seconds(dur('DURATION', '1m'));
const SPIKE_AT = seconds(dur('SPIKE_AT', '20s'));
const SPIKE_FOR = seconds(dur('SPIKE_FOR', '20s'));
const INTERVAL = VUS / RATE;
const AFTER = Math.max(1, DURATION - SPIKE_AT - SPIKE_FOR - 4);
const LIMIT = maxIterations(SPIKE_VUS * (Math.ceil(DURATION / (INTERVAL / 2)) + 1));

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-vus',
      startVUs: VUS,
      stages: [
        { duration: `${SPIKE_AT}s`, target: VUS },
        { duration: '2s', target: SPIKE_VUS },
        { duration: `${SPIKE_FOR}s`, target: SPIKE_VUS },
        { duration: '2s', target: VUS },
        { duration: `${AFTER}s`, target: VUS },
      ],
      gracefulRampDown: `${seconds(TIMEOUT) + 1}s`,
      gracefulStop: `${seconds(TIMEOUT) + 1}s`,
    },
  },
};

export default function () {
  guard(LIMIT);
  const started = Date.now();
  pageView({ scenario_kind: 'spike' });
  pace(started, INTERVAL);
}
