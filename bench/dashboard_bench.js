// Browser side of bench/dashboard_bench.sh (Debian's chromium through
// puppeteer-core, installed by tests/run.sh under tests/dashboard/):
//   1. load time of a big sweep's page: from navigation start until the job
//      table holds every job and the summary table, and the frame showing
//      them has been laid out and painted (a task queued from the next
//      animation frame: performance.now() in the page), 7 loads, median and
//      max; also when the DOM was complete, and the curves figure;
//   2. live latency: a fake worker (bench/dashboard_fake_worker.py) stores
//      epochs of a running sweep; each epoch's time from ReportEpoch's return
//      to the browser's job row showing it.
// Prints one JSON line.
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');
const puppeteer = require(path.join(__dirname, '..', 'tests', 'dashboard', 'node_modules', 'puppeteer-core'));

const [dash, bigSweep, bigJobs, liveSweep, address, stubs] = process.argv.slice(2);
const median = a => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

(async () => {
  const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const loads = [], built = [], curves = [];
  // When the DOM holds every row and the summary; then when the frame that
  // draws them is done (style, layout, paint: the task after its
  // animation-frame callback).
  await page.evaluateOnNewDocument((n, where) => {
    if (location.pathname !== where) return;
    window.__built = 0; window.__painted = 0;
    new MutationObserver((_, obs) => {
      if (document.querySelectorAll('table.jobs tbody tr').length !== n || !document.querySelector('#summary table')) return;
      obs.disconnect();
      window.__built = performance.now();
      requestAnimationFrame(() => setTimeout(() => { window.__painted = performance.now(); }, 0));
    }).observe(document, { childList: true, subtree: true });
  }, Number(bigJobs), '/sweep/' + bigSweep);
  for (let i = 0; i < 7; i++) {
    await page.goto('about:blank');
    await page.goto(dash + '/sweep/' + bigSweep, { waitUntil: 'domcontentloaded' });
    const t = await page.waitForFunction(() => window.__painted || false, { polling: 10, timeout: 60000 });
    built.push(await page.evaluate(() => window.__built));
    loads.push(await t.jsonValue());
    const c = await page.waitForFunction(() => {
      const img = document.getElementById('curves');
      return img && img.complete && img.naturalWidth > 0 ? performance.now() : false;
    }, { polling: 50, timeout: 60000 });
    curves.push(await c.jsonValue());
    // The next load starts on an idle server, as a user's first look does:
    // the other figure (metric against hyperparameter) finished too.
    await page.waitForFunction(() => {
      const img = document.getElementById('vs-param');
      return img && img.complete;
    }, { polling: 50, timeout: 60000 });
  }

  // Live: the page of the running sweep records when each epoch shows.
  await page.goto(dash + '/sweep/' + liveSweep, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('table.jobs tbody tr');
  await page.evaluate(() => {
    window.__seen = {};
    new MutationObserver(() => {
      for (const tr of document.querySelectorAll('table.jobs tbody tr')) {
        const epoch = parseInt(tr.children[5].textContent, 10);
        const key = tr.dataset.job + ':' + epoch;
        if (epoch > 0 && !(key in window.__seen)) window.__seen[key] = Date.now();
      }
    }).observe(document.querySelector('table.jobs'), { subtree: true, characterData: true, childList: true });
  });
  const worker = spawn('/usr/bin/python3', [path.join(__dirname, 'dashboard_fake_worker.py'),
    '--address', address, '--stubs', stubs, '--epochs', '20', '--interval', '0.25']);
  const stored = [];
  worker.stderr.on('data', d => process.stderr.write(d));
  for await (const line of readline.createInterface({ input: worker.stdout })) {
    const r = JSON.parse(line);
    if (r.epoch) stored.push(r);
  }
  await new Promise(ok => setTimeout(ok, 1500));
  const seen = await page.evaluate(() => window.__seen);
  // From the report leaving the worker (an upper bound of "stored") to the
  // row showing it.
  const lat = stored.map(r => (seen[r.job + ':' + r.epoch] ?? NaN) - r.sent_ms);
  const missing = lat.filter(x => !isFinite(x)).length;
  const ok = lat.filter(isFinite);
  await browser.close();
  const r = {
    jobs: Number(bigJobs),
    page_load_ms: { median: median(loads), max: Math.max(...loads), runs: loads.map(Math.round) },
    dom_built_ms: { median: median(built), max: Math.max(...built) },
    curves_figure_ms: { median: median(curves), max: Math.max(...curves) },
    live_latency_ms: { epochs: lat.length, shown: ok.length, missing, median: median(ok), max: Math.max(...ok) },
  };
  const p = r.page_load_ms, c = r.curves_figure_ms, l = r.live_latency_ms;
  console.log(`sweep page, ${r.jobs} jobs: every job row and the summary in the DOM ${r.dom_built_ms.median.toFixed(0)} ms and painted ${p.median.toFixed(0)} ms after ` +
    `navigation (median of ${p.runs.length} loads, max ${p.max.toFixed(0)} ms; target 300 ms)`);
  console.log(`its curves figure (every epoch of every job, the CLI's plot code): ${c.median.toFixed(0)} ms after navigation`);
  console.log(`live: ${l.shown} of ${l.epochs} epochs shown; report sent -> on screen median ${l.median.toFixed(0)} ms, ` +
    `max ${l.max.toFixed(0)} ms (target 1000 ms)`);
  console.log(JSON.stringify(r));
})().catch(e => { console.error(e.stack || e); process.exit(1); });
