// Shared pieces of the load scenarios: environment parameters, realistic paths and agents,
// pacing, and the hard bounds every scenario keeps (duration, iterations, VUs).
//
// Each scenario reads its knobs from the environment (`k6 run -e RATE=50 …`); nothing here
// sends a request by itself.

import http from 'k6/http';
import exec from 'k6/execution';
import { check, sleep } from 'k6';

/** Base URL of the server under test, without a trailing slash. */
export const TARGET = (__ENV.TARGET || 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** Per-request timeout: a banned (dropped) client's request fails after this. */
export const TIMEOUT = __ENV.TIMEOUT || '2s';

/** `30s`, `2m`, `1m30s`, `1h` or a bare number of seconds → seconds. */
export function seconds(text) {
  const s = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let matched = '';
  let m;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
    matched += m[0];
  }
  if (matched !== s || total <= 0) throw new Error(`bad duration "${text}"`);
  return total;
}

/** A positive number from the environment, or `fallback`. */
export function num(name, fallback) {
  const v = __ENV[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${name} must be a positive number, got "${v}"`);
  return n;
}

/** A duration from the environment (as a k6 duration string), or `fallback`. */
export function dur(name, fallback) {
  const v = __ENV[name] || fallback;
  return `${seconds(v)}s`;
}

/** Hard cap on iterations for the whole test: `MAX_ITERATIONS`, else `fallback`. Each
 * scenario's executor already bounds it by rate × duration; this is the belt to those braces. */
export function maxIterations(fallback) {
  return Math.ceil(num('MAX_ITERATIONS', fallback));
}

/** Stops the whole test once `limit` iterations have started (call first in each iteration). */
export function guard(limit) {
  if (exec.scenario.iterationInTest >= limit) {
    exec.test.abort(`iteration cap ${limit} reached`);
  }
}

// --- what a site's visitors ask for -----------------------------------------------------------

const PAGES = [
  ['/', 30],
  ['/products', 12],
  ['/products/PID', 20],
  ['/blog', 6],
  ['/blog/post-PID', 10],
  ['/about', 4],
  ['/contact', 3],
  ['/search?q=WORD', 8],
  ['/login', 3],
  ['/api/cart', 4],
];
const ASSETS = ['/static/app.css', '/static/app.js', '/static/logo.png', '/static/font.woff2', '/favicon.ico'];
const WORDS = ['shoes', 'red+dress', 'gift', 'sale', 'laptop', 'coffee', 'tent', 'lamp'];

export const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36',
];

function weighted(list) {
  const total = list.reduce((a, [, w]) => a + w, 0);
  let r = Math.random() * total;
  for (const [v, w] of list) {
    if ((r -= w) < 0) return v;
  }
  return list[list.length - 1][0];
}

export function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

/** A page path as a visitor would request it. */
export function pagePath() {
  return weighted(PAGES)
    .replace('PID', String(1 + Math.floor(Math.random() * 500)))
    .replace('WORD', pick(WORDS));
}

/** One browser agent per VU, so a client keeps its agent across requests. */
export function browserAgent() {
  return BROWSERS[(exec.vu.idInTest - 1) % BROWSERS.length];
}

/** One page view: the page, then (usually) a few of its assets in parallel, like a browser. */
export function pageView(tags = {}) {
  const path = pagePath();
  const headers = { 'User-Agent': browserAgent(), Referer: `${TARGET}/` };
  const params = { headers, timeout: TIMEOUT, tags: Object.assign({ role: 'visitor' }, tags) };
  const res = http.get(`${TARGET}${path}`, Object.assign({}, params, { tags: Object.assign({ name: 'page' }, params.tags) }));
  check(res, { 'page 200': (r) => r.status === 200 });
  const nAssets = Math.random() < 0.6 ? Math.floor(Math.random() * 4) : 0;
  if (nAssets > 0) {
    const batch = [];
    for (let i = 0; i < nAssets; i++) {
      batch.push(['GET', `${TARGET}${pick(ASSETS)}`, null, Object.assign({}, params, { tags: Object.assign({ name: 'asset' }, params.tags) })]);
    }
    for (const r of http.batch(batch)) {
      check(r, { 'asset 2xx': (x) => x.status === 200 || x.status === 204 });
    }
  }
  return res;
}

/**
 * Sleeps so that one VU starts an iteration every `intervalSecs` on average (uniform jitter of
 * ±50 %), measured from `startedMs`. The first iteration of each VU also waits a random part of
 * an interval, so clients don't start in lockstep.
 */
export function pace(startedMs, intervalSecs) {
  const target = intervalSecs * (0.5 + Math.random());
  const left = target - (Date.now() - startedMs) / 1000;
  if (left > 0) sleep(left);
}

export function staggerStart(intervalSecs) {
  if (exec.vu.iterationInScenario === 0) sleep(Math.random() * intervalSecs);
}
