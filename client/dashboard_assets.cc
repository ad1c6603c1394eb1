// The dashboard's page, script and style, served by the process itself (no
// CDN, nothing fetched from elsewhere). One page shell for every route; the
// script reads the path and draws that page from /api/ (JSON), /plot/ (the
// CLI's SVG figures) and, on a sweep's page, /api/sweep/ID/events
// (Server-Sent Events fed by WatchSweep).

namespace mixcal::client {

extern const char kDashboardPage[] = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mixcal</title>
<link rel="stylesheet" href="/static/style.css">
<!--PRELOAD-->
<script src="/static/app.js" defer></script>
</head>
<body>
<header>
  <a class="brand" href="/">mixcal</a>
  <nav><a href="/">Sweeps</a> <a href="/workers">Workers</a></nav>
  <span id="conn" class="conn"></span>
</header>
<div id="banner" class="banner" hidden></div>
<main id="main"><p class="muted">Loading…</p></main>
</body>
</html>
)HTML";

extern const char kDashboardStyle[] = R"CSS(
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; background: #1f2937; color: #fff; }
header a { color: #fff; text-decoration: none; }
header .brand { font-weight: bold; font-size: 1.1em; }
header nav a { margin-right: 1em; opacity: .85; }
.conn { margin-left: auto; font-size: .9em; opacity: .85; }
main { padding: 1em 1.2em; }
table.summary td { vertical-align: top; }
small.sig { font-weight: bold; color: #1d4ed8; }
h1 { font-size: 1.3em; margin: .2em 0 .6em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .5em; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: .25em .6em; border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; }
th { background: #f3f4f6; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.banner { background: #fee2e2; color: #7f1d1d; padding: .6em 1.2em; border-bottom: 1px solid #fca5a5; }
.muted { color: #6b7280; }
.running-note { color: #92400e; }
.state-queued { color: #6b7280; } .state-running { color: #1d4ed8; font-weight: bold; }
.state-succeeded { color: #15803d; } .state-failed { color: #b91c1c; font-weight: bold; }
.state-cancelled { color: #92400e; }
th.sortable { cursor: pointer; user-select: none; } td.pick { cursor: pointer; text-align: center; }
th[aria-sort=ascending]::after { content: ' ▲'; } th[aria-sort=descending]::after { content: ' ▼'; }
table.summary th:first-child, table.summary td:first-child { position: sticky; left: 0; background: #fff; }
figure.fig { margin: 0; } figure.fig figcaption { font-size: 12px; color: #555; }
progress { width: 120px; vertical-align: middle; }
.controls { display: flex; flex-wrap: wrap; gap: 1em; align-items: center; margin: .4em 0; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; }
.figs img { background: #fff; border: 1px solid #e5e7eb; max-width: 100%; }
.sig { font-weight: bold; }
.scroll { max-height: 480px; overflow: auto; display: inline-block; }
/* A thousand-row job table below the fold is laid out when scrolled to. */
.jobs-box { content-visibility: auto; contain-intrinsic-size: auto 480px; }
)CSS";

extern const char kDashboardScript[] = R"JS(
'use strict';
// mixcal dashboard: plain DOM, no framework. Pages: / (sweeps), /sweep/ID,
// /job/ID, /workers.
const main = document.getElementById('main');
const banner = document.getElementById('banner');

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
function num(v, d = 4) { return (v == null || !isFinite(v)) ? '–' : Number(v).toFixed(d); }
function ago(us) {
  if (!us) return '–';
  const s = (Date.now() * 1000 - us) / 1e6;
  return s < 90 ? Math.round(s) + ' s ago' : s < 5400 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
}
function showError(msg) { banner.textContent = msg; banner.hidden = false; }
function clearError() { banner.hidden = true; }

// GET JSON; on failure shows the banner and retries every 2 s until it works.
async function api(path) {
  for (;;) {
    try {
      const r = await fetch(path, { credentials: 'same-origin' });
      const body = await r.json();
      if (r.ok) { clearError(); return body; }
      if (r.status !== 502) throw new Error(body.error || r.statusText);
      showError(body.error + ' — retrying every 2 s');
    } catch (e) {
      if (e.message && !e.message.startsWith('NetworkError') && !(e instanceof TypeError)) throw e;
      showError('the dashboard process is not answering — retrying');
    }
    await new Promise(ok => setTimeout(ok, 2000));
  }
}
// Metric names as a paper writes them, for drop-downs: [value, label].
const METRIC_WORDS = { ece: 'ECE', oe: 'OE', mce: 'MCE', nll: 'NLL', brier: 'Brier', accuracy: 'accuracy',
  mean_confidence: 'mean confidence', train_loss: 'training loss', auroc: 'AUROC' };
function metricChoices(names) { return names.map(n => [n, METRIC_WORDS[n] || n]); }

function table(headers, rows, cls) {
  return el('table', { class: cls || '' },
    el('thead', {}, el('tr', {}, ...headers.map(h => el('th', { text: h })))),
    el('tbody', {}, ...rows));
}
function td(v, cls) { return el('td', { text: v, class: cls || '' }); }
function link(href, text) { return el('a', { href, text }); }
function select(id, options, value) {
  const s = el('select', { id });
  for (const o of options) {
    const [v, t] = Array.isArray(o) ? o : [o, o];
    const opt = el('option', { value: v, text: t });
    if (v === value) opt.selected = true;
    s.append(opt);
  }
  return s;
}
function img(src, alt) { return el('img', { src, alt, loading: 'lazy' }); }
// A figure with its downloads: the SVG as drawn, and a PNG rendered from it
// at twice the size (for slides and documents that take no SVG).
function figBox(image) {
  const name = () => { const u = new URL(image.src, location.href); return u.pathname.split('/').pop().replace('.svg', '') + '-' + (u.searchParams.get('sweep') || u.searchParams.get('job') || ''); };
  const svgLink = el('a', { href: '#', class: 'download', text: 'SVG' });
  svgLink.addEventListener('click', () => { svgLink.href = image.src; svgLink.download = name() + '.svg'; });
  const pngLink = el('a', { href: '#', class: 'download', text: 'PNG' });
  pngLink.addEventListener('click', async ev => {
    ev.preventDefault();
    const svg = await (await fetch(image.src)).text();
    const pic = new Image();
    pic.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg);
    await pic.decode();
    const canvas = document.createElement('canvas');
    canvas.width = pic.naturalWidth * 2; canvas.height = pic.naturalHeight * 2;
    const ctx = canvas.getContext('2d'); ctx.scale(2, 2); ctx.drawImage(pic, 0, 0);
    const a = el('a', { href: canvas.toDataURL('image/png'), download: name() + '.png' });
    document.body.append(a); a.click(); a.remove();
  });
  return el('figure', { class: 'fig' }, image, el('figcaption', {}, 'download ', svgLink, ' · ', pngLink));
}

// --- sweeps ---
async function sweepsPage() {
  document.title = 'mixcal: sweeps';
  const render = (sweeps) => {
    const rows = sweeps.map(s => {
      const c = s.counts, done = c.succeeded + c.failed + c.cancelled;
      const epochsTotal = s.jobs * s.epochs_per_job;
      const frac = epochsTotal ? c.epochs_done / epochsTotal : 0;
      return el('tr', { 'data-sweep': s.id },
        td(s.id, 'num'), el('td', {}, link('/sweep/' + s.id, s.name)),
        td(s.state, 'state-' + s.state),
        td(done + ' / ' + s.jobs, 'num'),
        el('td', {}, el('progress', { max: '1', value: String(frac) }),
          ' ' + c.epochs_done + ' / ' + epochsTotal + ' epochs'),
        td(c.running, 'num'), td(c.failed, 'num'), td(s.dataset + ' / ' + s.model),
        td(ago(s.created_at_us)), td(s.submitter));
    });
    main.replaceChildren(el('h1', { text: 'Sweeps' }),
      sweeps.length ? table(['id', 'name', 'state', 'jobs done', 'progress', 'running', 'failed', 'data / model', 'created', 'by'], rows, 'sweeps')
                    : el('p', { class: 'muted', text: 'No sweeps yet: mixcal submit SPEC.json' }));
  };
  for (;;) { render(await api('/api/sweeps')); await new Promise(ok => setTimeout(ok, 3000)); }
}

// --- one sweep ---
async function sweepPage(id) {
  document.title = 'mixcal: sweep ' + id;
  // The summary the page opens with (final epoch, raw, against the baseline)
  // is asked for at once, beside the jobs, not after them.
  const firstQuery = '?at=final&split=test&vs=baseline';
  let firstSummary = api('/api/sweep/' + id + '/summary' + firstQuery).catch(() => null);
  const data = await api('/api/sweep/' + id);
  const sweep = data.sweep;
  const rows = new Map();   // job id -> its <tr>
  const jobs = new Map();
  const head = el('p', { id: 'sweep-head' });
  let sweepNow = sweep;     // its newest state, for the summary's note
  function renderHead(s) {
    sweepNow = s;
    if (s.state !== 'active') document.querySelector('.running-note')?.remove();
    const c = s.counts;
    head.textContent = s.state + ' · ' + (c.succeeded + c.failed + c.cancelled) + ' / ' + s.jobs +
      ' jobs done · ' + c.running + ' running · ' + c.queued + ' queued · ' + c.epochs_done + ' / ' +
      s.jobs * s.epochs_per_job + ' epochs · ' + s.dataset + ' / ' + s.model;
  }
  renderHead(sweep);
  // The job table as one string: a thousand rows are drawn at once.
  const esc = v => String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const latest = new Map(data.latest.map(m => [m.job_id, m]));
  const rowHtml = j => { const m = latest.get(j.id) || {}; return `<tr data-job="${j.id}" data-state="${esc(j.state)}"><td class="num"><a href="/job/${j.id}">${j.id}</a></td>` +
    `<td>${esc(j.method)}</td><td class="num">${j.method === 'baseline' ? '–' : esc(j.value)}</td><td class="num">${j.seed}</td>` +
    `<td class="state-${esc(j.state)}">${esc(j.state)}</td><td class="num">${j.epoch} / ${j.epochs}</td>` +
    `<td class="num">${num(m.samples_per_sec, 0)}</td><td class="num">${num(m.accuracy)}</td><td class="num">${num(m.ece)}</td><td class="num">${num(m.oe)}</td>` +
    `<td class="num">${j.worker || '–'}</td><td class="num">${j.attempt} / ${j.max_attempts}</td><td>${esc(j.error)}</td>` +
    `<td class="pick" title="compare job ${j.id}">☐</td></tr>`; };
  // Cells: 4 state, 5 epoch, 6 samples/s, 7 accuracy, 8 ECE, 9 OE, 10 worker, 11 attempts, 12 error.
  function updateJob(j) {
    jobs.set(j.id, j);
    const tr = rows.get(j.id);
    if (!tr) return;
    const c = tr.children;
    if (tr.dataset.state !== j.state) {
      tr.dataset.state = j.state;
      c[4].textContent = j.state; c[4].className = 'state-' + j.state;
    }
    c[5].textContent = j.epoch + ' / ' + j.epochs;
    c[10].textContent = j.worker || '–';
    c[11].textContent = j.attempt + ' / ' + j.max_attempts;
    c[12].textContent = j.error;
  }
  function updateMetrics(m) {
    const tr = rows.get(m.job_id);
    if (!tr) return;
    const c = tr.children;
    c[7].textContent = num(m.accuracy); c[8].textContent = num(m.ece);
    c[9].textContent = num(m.oe); c[6].textContent = num(m.samples_per_sec, 0);
    const j = jobs.get(m.job_id);
    if (j && m.epoch > j.epoch) { j.epoch = m.epoch; c[5].textContent = j.epoch + ' / ' + j.epochs; }
  }
  const jobTable = table(['job', 'method', 'value', 'seed', 'state', 'epoch', 'samples/s', 'accuracy', 'ECE', 'OE', 'worker', 'attempts', 'error', 'compare'], [], 'jobs');
  jobTable.tBodies[0].innerHTML = data.jobs.map(rowHtml).join('');
  for (const tr of jobTable.tBodies[0].rows) rows.set(Number(tr.dataset.job), tr);
  for (const j of data.jobs) jobs.set(j.id, j);
  // Sorting (a click on a column's head; again: the other way) and
  // filtering (every word must appear in the row, e.g. "mixup 0.4 running").
  let sortCol = -1, sortDir = 1;
  const cellValue = (tr, c) => { const t = tr.children[c].textContent; const n = parseFloat(t); return isNaN(n) ? t.toLowerCase() : n; };
  Array.from(jobTable.tHead.rows[0].cells).forEach((th, c) => {
    th.classList.add('sortable'); th.title = 'sort by ' + th.textContent;
    th.addEventListener('click', () => {
      sortDir = sortCol === c ? -sortDir : 1; sortCol = c;
      for (const h of jobTable.tHead.rows[0].cells) h.removeAttribute('aria-sort');
      th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      const trs = Array.from(jobTable.tBodies[0].rows);
      trs.sort((a, b) => { const x = cellValue(a, c), y = cellValue(b, c); return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
      jobTable.tBodies[0].append(...trs);
    });
  });
  // Compare: the ticked jobs' curves on one figure, their reliability curves
  // on one axes, and each one's reliability diagram beside the others (each
  // at its newest epoch).
  const cmpMetric = select('compare-metric', metricChoices(['ece', 'oe', 'accuracy', 'nll', 'brier', 'mce', 'mean_confidence', 'train_loss']), 'ece');
  const cmpBox = el('div', { id: 'compare', class: 'figs' }, el('p', { class: 'muted', text: 'Tick jobs in the table (column "compare") to see them side by side.' }));
  function loadCompare() {
    const ids = Array.from(jobTable.querySelectorAll('td.pick.picked')).map(c => c.parentElement.dataset.job);
    if (!ids.length) { cmpBox.replaceChildren(el('p', { class: 'muted', text: 'Tick jobs in the table (column "compare") to see them side by side.' })); return; }
    const curve = img('/plot/curves.svg?jobs=' + ids.join(',') + '&metric=' + cmpMetric.value + '&split=' + splitSel.value + '&t=' + Date.now(), 'chosen jobs compared');
    curve.id = 'compare-curves';
    const overlay = img('/plot/reliability.svg?jobs=' + ids.join(',') + '&split=' + splitSel.value + '&t=' + Date.now(), 'chosen jobs\' reliability on one axes');
    overlay.id = 'compare-reliability';
    const rels = ids.map(id => { const r = img('/plot/reliability.svg?job=' + id + '&split=' + splitSel.value + '&t=' + Date.now(), 'reliability of job ' + id); r.className = 'compare-rel'; return figBox(r); });
    cmpBox.replaceChildren(figBox(curve), figBox(overlay), ...rels);
  }
  // A plain cell, not 1,000 checkboxes: the table stays as quick to draw.
  jobTable.addEventListener('click', e => {
    const c = e.target.closest('td.pick');
    if (!c) return;
    c.classList.toggle('picked'); c.textContent = c.classList.contains('picked') ? '☑' : '☐';
    loadCompare();
  });
  cmpMetric.addEventListener('change', loadCompare);
  const filterIn = el('input', { id: 'job-filter', type: 'search', placeholder: 'filter: method, value, seed, state…', size: '32' });
  const filterCount = el('span', { class: 'muted', id: 'job-filter-count' });
  filterIn.addEventListener('input', () => {
    const words = filterIn.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const tr of jobTable.tBodies[0].rows) {
      const text = Array.from(tr.children).slice(0, 6).map(td => td.textContent.toLowerCase()).join(' ');
      const ok = words.every(w => text.includes(w));
      tr.hidden = !ok; shown += ok;
    }
    filterCount.textContent = words.length ? shown + ' of ' + jobTable.tBodies[0].rows.length + ' jobs' : '';
  });

  // Summary with selectors.
  const configs = [['', 'none']];
  const seen = new Set();
  for (const j of data.jobs) {
    const key = j.method === 'baseline' ? 'baseline' : j.method + ':' + j.value;
    if (!seen.has(key)) { seen.add(key); configs.push([key, j.method === 'baseline' ? 'baseline' : j.method + ' ' + j.value]); }
  }
  const atSel = select('at', [['final', 'final epoch'], ['best:ece', 'best by validation ECE'], ['best:accuracy', 'best by validation accuracy'], ['best:nll', 'best by validation NLL'], ['epoch', 'epoch N']], 'final');
  const epochIn = el('input', { id: 'at-epoch', type: 'number', min: '1', value: '1', size: '4', hidden: '' });
  const splitSel = select('split', [['test', 'raw'], ['test_ts', 'temperature-scaled']], 'test');
  const vsSel = select('vs', configs, seen.has('baseline') ? 'baseline' : '');
  const summaryBox = el('div', { id: 'summary' });
  async function loadSummary() {
    const at = atSel.value === 'epoch' ? 'epoch:' + epochIn.value : atSel.value;
    epochIn.hidden = atSel.value !== 'epoch';
    const q = '?at=' + encodeURIComponent(at) + '&split=' + splitSel.value + '&vs=' + encodeURIComponent(vsSel.value);
    let rowsJ = firstSummary && q === firstQuery ? await firstSummary : null;
    firstSummary = null;  // used once: later loads ask again
    try { if (!rowsJ) rowsJ = await api('/api/sweep/' + id + '/summary' + q); }
    catch (e) { summaryBox.replaceChildren(el('p', { class: 'muted', text: e.message })); return; }
    const metrics = ['accuracy', 'ece', 'oe', 'mce', 'nll', 'brier'];
    const trs = rowsJ.map(r => {
      const st = Object.fromEntries((r.stats || []).map(s => [s.metric, s]));
      const cells = metrics.map(m => {
        const s = st[m];
        if (!s) return td('–', 'num');
        const cell = td(num(s.mean) + (s.count > 1 ? ' ± ' + num(s.std) : ''), 'num');
        const c = s.vs;
        if (c && c.pairs > 1) {
          cell.append(el('br'), el('small', { class: c.significant ? 'sig' : 'muted',
            text: (c.mean >= 0 ? '+' : '') + num(c.mean) + ' [' + num(c.low) + ', ' + num(c.high) + ']' + (c.significant ? ' *' : '') }));
        }
        return cell;
      });
      return el('tr', { 'data-config': r.method + ':' + r.value }, td(r.method === 'baseline' ? 'baseline' : r.method + ' ' + r.value), td(r.seeds, 'num'), ...cells);
    });
    const names = { accuracy: 'accuracy', ece: 'ECE', oe: 'OE', mce: 'MCE', nll: 'NLL', brier: 'Brier' };
    summaryBox.replaceChildren(trs.length ? el('div', { class: 'scroll' }, table(['method', 'seeds', ...metrics.map(m => names[m])], trs, 'summary'))
      : el('p', { class: 'muted', text: 'No finished epochs yet.' }),
      el('p', { class: 'muted', text: 'mean ± std over seeds' + (vsSel.value ? '; below: difference to ' + vsSel.value + ' paired by seed [95% Student-t interval], * = the interval excludes 0' : '') }),
      runningNote(rowsJ));
  }
  // While the sweep runs, "final" is each job's newest epoch: say which.
  function runningNote(rowsJ) {
    const eps = rowsJ.flatMap(r => r.epochs || []);
    if (atSel.value !== 'final' || sweepNow.state !== 'active' || !eps.length) return '';
    const lo = Math.min(...eps), hi = Math.max(...eps);
    return el('p', { class: 'running-note', text: 'The sweep is running: each job at its newest epoch, ' +
      (lo === hi ? 'epoch ' + lo : 'epochs ' + lo + ' to ' + hi) + ' of ' + sweepNow.epochs_per_job + ' — not final yet.' });
  }
  for (const s of [atSel, splitSel, vsSel, epochIn]) s.addEventListener('change', loadSummary);

  // Figures: curves per metric (seed bands) and metric against hyperparameter.
  const metricSel = select('curve-metric', metricChoices(['ece', 'oe', 'accuracy', 'nll', 'brier', 'mce', 'mean_confidence', 'train_loss']), 'ece');
  // Only the hyperparameters this sweep's methods have.
  const PARAM_OF = { mixup: 'alpha', feature_mixup: 'alpha', cutmix: 'alpha', regmixup: 'alpha', manifold_mixup: 'alpha',
    label_smoothing: 'epsilon', erl: 'beta', focal: 'gamma', mmce: 'lambda' };
  const params = [...new Set(data.jobs.map(j => PARAM_OF[j.method]).filter(Boolean))].sort();
  const paramSel = select('param', [['', 'every method'], ...params.map(p => [p, p])], '');
  const curves = img('', 'curves'), vsParam = img('', 'metric against hyperparameter');
  curves.id = 'curves'; vsParam.id = 'vs-param';
  function loadFigures() {
    const t = Date.now();
    curves.src = '/plot/curves.svg?sweep=' + id + '&metric=' + metricSel.value + '&split=' + splitSel.value + '&t=' + t;
    const m = ['train_loss'].includes(metricSel.value) ? 'ece' : metricSel.value;
    vsParam.src = '/plot/sweep.svg?sweep=' + id + '&metric=' + m + '&split=' + splitSel.value + '&param=' + paramSel.value + (vsSel.value ? '&vs=' + encodeURIComponent(vsSel.value) : '') + '&t=' + t;
  }
  for (const s of [metricSel, paramSel, splitSel, vsSel]) s.addEventListener('change', loadFigures);

  // What people did to the sweep (submitted, cancelled, retried: who and
  // when) and its state changes, read when opened.
  const sweepLog = el('details', { id: 'sweep-log' }, el('summary', { text: 'Events: submitted, cancelled, retried (who and when), state changes' }));
  sweepLog.addEventListener('toggle', async () => {
    if (!sweepLog.open || sweepLog.dataset.loaded) return;
    sweepLog.dataset.loaded = '1';
    try {
      const evs = await api('/api/sweep/' + id + '/log');
      sweepLog.append(evs.length ? table(['time', 'job', 'event', 'what'], evs.map(e => el('tr', {},
        td(new Date(e.time_us / 1000).toLocaleString()), td(e.job_id ? String(e.job_id) : 'sweep'), td(e.kind), td(e.message))), 'events')
        : el('p', { class: 'muted', text: 'No events.' }));
    } catch (e) { sweepLog.append(el('p', { class: 'muted', text: e.message })); }
  });
  main.replaceChildren(
    el('h1', { text: 'Sweep ' + id + ': ' + sweep.name }), head,
    el('p', {}, link('/api/sweep/' + id + '/metrics.csv', 'metrics.csv'), ' · ', link('/api/sweep/' + id + '/metrics.json', 'metrics.json')),
    el('h2', { text: 'Summary' }),
    el('div', { class: 'controls' }, el('label', {}, 'at ', atSel, ' ', epochIn), el('label', {}, 'split ', splitSel), el('label', {}, 'compare with ', vsSel)),
    summaryBox,
    el('h2', { text: 'Curves' }),
    el('div', { class: 'controls' }, el('label', {}, 'metric ', metricSel), el('label', {}, 'hyperparameter ', paramSel)),
    el('div', { class: 'figs' }, figBox(curves), figBox(vsParam)),
    el('h2', { text: 'Jobs' }), el('div', { class: 'controls' }, filterIn, ' ', filterCount),
    el('div', { class: 'scroll jobs-box' }, jobTable),
    el('h2', { text: 'Compare' }), el('div', { class: 'controls' }, el('label', {}, 'metric ', cmpMetric)), cmpBox,
    sweepLog);
  // The table and summary first; the figures (which read every epoch) after.
  await loadSummary();
  loadFigures();

  // Live: every job change and epoch as it is stored.
  let refresh = null;
  const later = () => { if (!refresh) refresh = setTimeout(() => { refresh = null; loadSummary(); loadFigures(); }, 3000); };
  const conn = document.getElementById('conn');
  const es = new EventSource('/api/sweep/' + id + '/events');
  es.addEventListener('job', e => { const j = JSON.parse(e.data); const before = jobs.get(j.id); updateJob(j); if (!before || before.state !== j.state) later(); clearError(); conn.textContent = 'live'; });
  es.addEventListener('metrics', e => { updateMetrics(JSON.parse(e.data)); clearError(); conn.textContent = 'live'; });
  es.addEventListener('sweep', e => {
    const s = JSON.parse(e.data);
    renderHead(s);
    later();
    // An ended sweep's stream ends too: nothing more will come.
    if (s.state !== 'active') { es.close(); conn.textContent = 'sweep ' + s.state; }
  });
  es.addEventListener('failure', e => { showError(JSON.parse(e.data).error + ' — reconnecting'); conn.textContent = 'reconnecting'; });
  es.onerror = () => { conn.textContent = 'reconnecting'; };
}

// A job's configuration as a two-column table, nested keys dotted
// ("training.lr"); settings left empty are not listed.
function configTable(config) {
  const rows = [];
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, prefix + k + '.');
      else if (v !== '' && !(Array.isArray(v) && !v.length)) rows.push(el('tr', {}, td(prefix + k), td(Array.isArray(v) ? v.join(', ') : String(v))));
    }
  };
  walk(config, '');
  return rows.length ? table(['setting', 'value'], rows, 'config') : el('p', { class: 'muted', text: 'Defaults only.' });
}

// --- one job ---
async function jobPage(id) {
  document.title = 'mixcal: job ' + id;
  const data = await api('/api/job/' + id);
  const j = data.job;
  const last = Math.max(1, j.epoch);
  const slider = el('input', { id: 'epoch', type: 'range', min: '1', max: String(last), value: String(last) });
  const epochLabel = el('span', { id: 'epoch-label', text: 'epoch ' + last });
  const splits = data.splits.filter(s => s !== 'noise' && s !== 'ood');
  const splitSel = select('rel-split', splits.length ? splits : ['test'], 'test');
  const rel = img('', 'reliability diagram'); rel.id = 'reliability';
  // A second epoch beside the first: the same job early and late.
  const slider2 = el('input', { id: 'epoch2', type: 'range', min: '1', max: String(last), value: '1' });
  const epochLabel2 = el('span', { id: 'epoch2-label', text: 'epoch 1' });
  const rel2 = img('', 'reliability diagram, second epoch'); rel2.id = 'reliability2';
  const loadRel = () => {
    epochLabel.textContent = 'epoch ' + slider.value; epochLabel2.textContent = 'epoch ' + slider2.value;
    rel.src = '/plot/reliability.svg?job=' + id + '&epoch=' + slider.value + '&split=' + splitSel.value;
    rel2.src = '/plot/reliability.svg?job=' + id + '&epoch=' + slider2.value + '&split=' + splitSel.value;
  };
  slider.addEventListener('input', loadRel); slider2.addEventListener('input', loadRel); splitSel.addEventListener('change', loadRel);
  const metricSel = select('job-metric', metricChoices(['ece', 'oe', 'accuracy', 'nll', 'brier', 'mean_confidence', 'auroc']), 'ece');
  const curve = img('', 'curves'); curve.id = 'job-curves';
  const loadCurve = () => { curve.src = '/plot/curves.svg?job=' + id + '&metric=' + metricSel.value; };
  metricSel.addEventListener('change', loadCurve);
  const events = data.events.map(e => el('tr', {}, td(new Date(e.time_us / 1000).toLocaleString()), td(e.kind), td(e.message)));
  main.replaceChildren(
    el('h1', { text: 'Job ' + id + ': ' + j.label + ', seed ' + j.seed }),
    el('p', {}, link('/sweep/' + j.sweep_id, 'sweep ' + j.sweep_id), ' · ', el('span', { class: 'state-' + j.state, text: j.state }),
      ' · epoch ' + j.epoch + ' / ' + j.epochs + ' · attempt ' + j.attempt + ' / ' + j.max_attempts + (j.error ? ' · ' + j.error : '')),
    el('h2', { text: 'Reliability' }),
    el('div', { class: 'controls' }, el('label', {}, slider, ' ', epochLabel), el('label', {}, 'beside it ', slider2, ' ', epochLabel2), el('label', {}, 'split ', splitSel)),
    j.epoch ? el('div', { class: 'figs' }, figBox(rel), figBox(rel2)) : el('p', { class: 'muted', text: 'No epochs stored yet.' }),
    el('h2', { text: 'Curves' }), el('div', { class: 'controls' }, el('label', {}, 'metric ', metricSel)),
    j.epoch ? figBox(curve) : null,
    el('h2', { text: 'Configuration' }),
    (data.settings || []).length
      ? table(['setting', 'value (as trained, defaults filled in)'], data.settings.map(x => el('tr', {}, td(x.name), td(x.value))), 'config settings')
      : null,
    el('details', {}, el('summary', { text: 'as submitted (fields left empty take the defaults above)' }), configTable(data.config || {})),
    el('h2', { text: 'Events' }), table(['time', 'kind', 'message'], events, 'events'));
  if (j.epoch) { loadRel(); loadCurve(); }
}

// --- workers ---
async function workersPage() {
  document.title = 'mixcal: workers';
  for (;;) {
    const ws = await api('/api/workers');
    const rows = ws.map(w => el('tr', {}, td(w.id, 'num'), td(w.name), td(w.host), td(w.device + (w.device_name && w.device_name !== w.device ? ' (' + w.device_name + ')' : '')),
      td(w.state + (w.reason ? ': ' + w.reason : '')), el('td', { class: 'num' }, w.current_job ? link('/job/' + w.current_job, String(w.current_job)) : '–'),
      td(w.heartbeat_ago_s == null ? '–' : Math.round(w.heartbeat_ago_s) + ' s ago', 'num'), td(w.placement || '–')));
    main.replaceChildren(el('h1', { text: 'Workers' }),
      ws.length ? table(['id', 'name', 'host', 'device', 'state', 'current job', 'last heartbeat', 'placement'], rows, 'workers')
                : el('p', { class: 'muted', text: 'No workers registered.' }));
    await new Promise(ok => setTimeout(ok, 3000));
  }
}

const path = location.pathname;
let m;
(async () => {
  try {
    if ((m = path.match(/^\/sweep\/(\d+)$/))) await sweepPage(m[1]);
    else if ((m = path.match(/^\/job\/(\d+)$/))) await jobPage(m[1]);
    else if (path === '/workers') await workersPage();
    else await sweepsPage();
  } catch (e) {
    main.replaceChildren(el('p', { class: 'banner', text: e.message }));
  }
})();
)JS";

}  // namespace mixcal::client
