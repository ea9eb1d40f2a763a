// Keeps bouncer's dashboard open in headless Chromium (Debian's, through playwright-core; no
// browser is downloaded) and reports what a person would see, as JSON lines on stdout:
//
//   {"event":"ready","at":…}                    the page is live (its event stream is open)
//   {"event":"ban","ip":"…","at":…}             an IP appeared in the active-bans table
//   {"event":"shot","path":"…"}                 after `shot PATH`
//   {"event":"ip","ip":"…","agents":[…],…}      after `ip IP PATH`: that IP's page, as text
//   {"event":"audit",…}                         after `audit`: elements and attributes a payload
//                                               would have made, and the title
//   {"event":"ran","what":"…"}                  a dialog opened or the title changed: script ran
//
// Commands come on stdin, one a line: `shot PATH`, `ip IP PATH`, `audit`, `quit`. Times are
// UNIX seconds from this machine's clock (the test compares them with the kernel's ban).
//
//   node dashboard.js URL [USER PASSWORD]      (CHROMIUM=/usr/bin/chromium by default)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const [url, user, password] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const now = () => Date.now() / 1000;

// What a hostile log line would have left in the DOM had it been parsed as HTML.
function audit() {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (['img', 'iframe', 'object', 'embed'].includes(tag)) bad.push('<' + tag + '>');
    if (tag === 'script' && el.getAttribute('src') !== '/static/live.js') bad.push('<script>');
    for (const a of el.attributes) {
      const v = a.value.toLowerCase();
      if (a.name.startsWith('on') || a.name === 'srcdoc' || v.startsWith('javascript:')) {
        bad.push(tag + '[' + a.name + ']');
      }
    }
  }
  return { bad, title: document.title, elements: document.querySelectorAll('*').length };
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bouncer-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1300, height: 900 },
    httpCredentials: user ? { username: user, password } : undefined,
  });
  const watchRan = (page) => {
    page.on('dialog', (d) => {
      say({ event: 'ran', what: 'dialog: ' + d.message() });
      d.dismiss().catch(() => {});
    });
  };
  const page = context.pages()[0] || (await context.newPage());
  watchRan(page);
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, {
    timeout: 15000,
  });
  const title = await page.title();
  say({ event: 'ready', at: now(), title });

  const seen = new Set();
  let stop = false;
  // Awaited before the context closes: a title read from a page being closed is "" (a false
  // "ran" at quit).
  const watching = (async () => {
    while (!stop) {
      const ips = await page
        .evaluate(() => Array.from(document.querySelectorAll('#bans tbody a.ip'), (a) => a.textContent))
        .catch(() => []);
      const at = now();
      for (const ip of ips) {
        if (!seen.has(ip)) {
          seen.add(ip);
          say({ event: 'ban', ip, at });
        }
      }
      const t = await page.title().catch(() => title);
      if (t !== title) say({ event: 'ran', what: 'title: ' + t });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [cmd, ...rest] = line.trim().split(' ');
    try {
      if (cmd === 'shot') {
        await page.screenshot({ path: rest[0], fullPage: true });
        say({ event: 'shot', path: rest[0] });
      } else if (cmd === 'audit') {
        say({ event: 'audit', ...(await page.evaluate(audit)) });
      } else if (cmd === 'ip') {
        const p = await context.newPage();
        watchRan(p);
        await p.goto(new URL('/ip/' + rest[0], url).toString());
        await p.waitForFunction(() => document.getElementById('live').textContent === 'live', null, {
          timeout: 15000,
        });
        await p.waitForTimeout(1500); // one update from the stream, at least
        await p.screenshot({ path: rest[1], fullPage: true });
        const text = (sel) => p.evaluate((s) => Array.from(document.querySelectorAll(s), (e) => e.textContent), sel);
        say({
          event: 'ip',
          ip: rest[0],
          agents: await text('#agents td.path'),
          paths: await text('#paths td.path'),
          status: await text('[data-k="status"]'),
          ...(await p.evaluate(audit)),
        });
        await p.close();
      } else if (cmd === 'quit') {
        break;
      }
    } catch (e) {
      say({ event: 'error', command: cmd, error: String(e) });
    }
  }
  stop = true;
  await watching;
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

main().catch((e) => {
  say({ event: 'error', error: String(e) });
  process.exit(1);
});
