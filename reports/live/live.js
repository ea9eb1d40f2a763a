// bouncer's live view: keeps the page current from the server's event stream (/api/stream).
//
// The page arrives complete from the server (and reloads every 3 s without script); this only
// puts newer values in the same places: text with textContent, classes, links, bar widths and
// plot points with setAttribute, each checked against what it may be (a class name, /ip/<ip>,
// a number, a list of points). Nothing received is ever parsed as HTML, so a hostile path or
// user agent in a log stays text. Served from the binary; no inline script (see the CSP).
'use strict';
(function () {
  // The plot box, as in src/serve/view.rs.
  const W = 900, H = 220, LEFT = 52, RIGHT = 12, TOP = 10, BOTTOM = 22;
  const SVG = 'http://www.w3.org/2000/svg';
  const CLASS_OK = /^[a-z0-9 _-]*$/;
  const NUM_OK = /^[0-9]+(\.[0-9]+)?$/;
  const HREF_OK = /^\/ip\/[0-9A-Fa-f:.]+$/;
  const POINTS_OK = /^[0-9., -]*$/;
  const STREAM_OK = /^\/api\/stream(\?ip=[0-9A-Fa-f:.]+)?$/;

  function get(v, path) {
    return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), v);
  }
  function str(x) {
    return x == null ? '' : String(x);
  }
  function setClass(el, value) {
    const c = str(value);
    if (CLASS_OK.test(c)) el.setAttribute('class', ((el.dataset.cbase || '') + ' ' + c).trim());
  }
  function attrs(el, a) {
    Object.keys(a).forEach((k) => el.setAttribute(k, String(a[k])));
  }

  // One row from the list's <template>: data-f text, data-c class, data-href link, data-w width.
  function fillRow(row, item) {
    [row, ...row.querySelectorAll('*')].forEach((el) => {
      const d = el.dataset;
      if (!d) return;
      if (d.f) el.textContent = str(item[d.f]);
      if (d.c) setClass(el, item[d.c]);
      if (d.href) {
        const h = str(item[d.href]);
        if (HREF_OK.test(h)) el.setAttribute('href', h);
        else el.removeAttribute('href');
      }
      if (d.w) {
        const w = str(item[d.w]);
        if (NUM_OK.test(w)) el.setAttribute('width', w);
      }
    });
  }

  function fillList(container, items) {
    const tpl = container.querySelector(':scope > template');
    if (!tpl || !tpl.content.firstElementChild) return;
    Array.from(container.children).forEach((ch) => {
      if (ch !== tpl) ch.remove();
    });
    (Array.isArray(items) ? items : []).forEach((item) => {
      const row = tpl.content.firstElementChild.cloneNode(true);
      fillRow(row, item || {});
      container.appendChild(row);
    });
  }

  function ticks(g, list, vertical) {
    if (!g) return;
    while (g.firstChild) g.firstChild.remove();
    (Array.isArray(list) ? list : []).forEach((t) => {
      const at = str(t && t.at);
      if (!NUM_OK.test(at)) return;
      const line = document.createElementNS(SVG, 'line');
      const text = document.createElementNS(SVG, 'text');
      if (vertical) {
        attrs(line, { x1: LEFT, x2: W - RIGHT, y1: at, y2: at });
        attrs(text, { class: 'yl', x: LEFT - 6, y: at });
      } else {
        attrs(line, { x1: at, x2: at, y1: TOP, y2: H - BOTTOM });
        attrs(text, { class: 'xl', x: at, y: H - 6 });
      }
      text.textContent = str(t.label);
      g.append(line, text);
    });
  }

  function fillChart(svg, c) {
    if (!c) return;
    svg.querySelectorAll('[data-p]').forEach((el) => {
      const p = str(c[el.dataset.p]);
      if (POINTS_OK.test(p)) el.setAttribute('points', p);
    });
    ticks(svg.querySelector('[data-ticks="y"]'), c.yticks, true);
    ticks(svg.querySelector('[data-ticks="x"]'), c.xticks, false);
  }

  function render(v) {
    document.querySelectorAll('[data-k]').forEach((el) => {
      el.textContent = str(get(v, el.dataset.k));
    });
    document.querySelectorAll('[data-kc]').forEach((el) => setClass(el, get(v, el.dataset.kc)));
    document.querySelectorAll('[data-kshow]').forEach((el) => {
      el.hidden = !get(v, el.dataset.kshow);
    });
    document.querySelectorAll('[data-list]').forEach((el) => fillList(el, get(v, el.dataset.list)));
    document.querySelectorAll('svg[data-chart]').forEach((svg) => fillChart(svg, get(v, svg.dataset.chart)));
    document.body.dataset.updated = String(Date.now());
  }

  function connect() {
    const url = document.body.dataset.stream || '';
    const live = document.getElementById('live');
    if (!STREAM_OK.test(url) || !window.EventSource) return;
    const es = new EventSource(url);
    es.onopen = () => {
      live.textContent = 'live';
      live.className = 'live ok';
    };
    // EventSource reconnects by itself; say so meanwhile.
    es.onerror = () => {
      live.textContent = 'reconnecting…';
      live.className = 'live warn';
    };
    es.onmessage = (e) => {
      let v;
      try {
        v = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      render(v);
    };
  }

  connect();
})();
