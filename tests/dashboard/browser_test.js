// The dashboard in a real browser: Debian's chromium, headless, driven
// through the DevTools protocol (puppeteer-core), against a real
// coordinator, a real worker (LibTorch on a tiny synthetic sweep) and a real
// `mixcal dashboard`. Screenshots of every page go to $MIXCAL_ARTIFACTS.
//
//   MIXCAL_BIN=build/client/mixcal MIXCAL_COORDINATOR_BIN=... \
//   MIXCAL_WORKER_BIN=... node tests/dashboard/browser_test.js
//
// Exit 0 when every check holds; otherwise the failed check and exit 1.
'use strict';
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
let puppeteer;
try {
  puppeteer = require('puppeteer-core');
} catch (e) {
  console.error('puppeteer-core is not installed: tests/run.sh installs it (npm ci in tests/dashboard)');
  process.exit(1);
}

const bin = {
  mixcal: process.env.MIXCAL_BIN,
  coordinator: process.env.MIXCAL_COORDINATOR_BIN,
  worker: process.env.MIXCAL_WORKER_BIN,
};
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mixcal_dashboard_'));
const artifacts = process.env.MIXCAL_ARTIFACTS || path.join(work, 'screenshots');
fs.mkdirSync(artifacts, { recursive: true });

const procs = [];
function start(cmd, args, log, env) {
  const out = fs.openSync(path.join(work, log), 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], env: { ...process.env, OMP_NUM_THREADS: '1', ...env } });
  procs.push(p);
  return p;
}
function stop(p) {
  return new Promise(ok => {
    if (p.exitCode !== null || p.signalCode !== null) return ok();
    p.once('exit', ok);
    p.kill('SIGKILL');
  });
}
const sleep = ms => new Promise(ok => setTimeout(ok, ms));
async function waitFile(file, seconds) {
  for (let i = 0; i < seconds * 10; i++) {
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim()) return fs.readFileSync(file, 'utf8').trim();
    await sleep(100);
  }
  throw new Error('timed out waiting for ' + file);
}
let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error('FAILED: ' + what);
  checks++;
  console.log('ok  ' + what);
}

let coordinator, port;
async function startCoordinator(listenPort) {
  const portFile = path.join(work, 'port');
  fs.rmSync(portFile, { force: true });
  coordinator = start(bin.coordinator, ['--listen', '127.0.0.1:' + (listenPort || 0), '--db', path.join(work, 'mixcal.db'),
    '--port_file', portFile, '--heartbeat_seconds', '0.25'], 'coordinator.log');
  port = Number(await waitFile(portFile, 20));
}
function mixcal(...args) {
  return execFileSync(bin.mixcal, [...args, '--address', '127.0.0.1:' + port], { encoding: 'utf8' });
}

async function main() {
  await startCoordinator();
  const dashPortFile = path.join(work, 'dash.port');
  start(bin.mixcal, ['dashboard', '--listen', '127.0.0.1:0', '--port-file', dashPortFile, '--address', '127.0.0.1:' + port], 'dashboard.log');
  const dash = 'http://127.0.0.1:' + (await waitFile(dashPortFile, 20));

  // A tiny sweep, queued: no worker yet.
  const sweep = JSON.parse(mixcal('submit', '--name', 'browser-sweep', '--dataset', 'synthetic', '--model', 'mlp',
    '--methods', 'baseline,mixup:0.4', '--seeds', '2', '--epochs', '4', '--device', 'cpu', '--format', 'json'));
  const sweepId = sweep.id;

  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on('pageerror', e => console.log('page error: ' + e.message));

    // 1. The sweeps page lists the sweep.
    await page.goto(dash + '/', { waitUntil: 'networkidle2' });
    await page.waitForSelector(`tr[data-sweep="${sweepId}"]`, { timeout: 10000 });
    const listed = await page.$eval(`tr[data-sweep="${sweepId}"]`, tr => tr.textContent);
    check(listed.includes('browser-sweep') && listed.includes('0 / 4'), 'sweeps page lists the sweep with its progress');
    await page.screenshot({ path: path.join(artifacts, '1-sweeps.png'), fullPage: true });

    // 2. The sweep page: jobs queued, then succeeded without a reload.
    await page.goto(dash + '/sweep/' + sweepId, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('tr[data-job]', { timeout: 10000 });
    const states0 = await page.$$eval('tr[data-job]', trs => trs.map(t => t.dataset.state));
    check(states0.length === 4 && states0.every(s => s === 'queued'), 'sweep page shows 4 queued jobs');
    await page.evaluate(() => { window.__notReloaded = true; });
    const seen = new Set();
    await page.exposeFunction('__sawState', s => seen.add(s));
    await page.evaluate(() => {
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll('tr[data-job]')) window.__sawState(tr.dataset.state);
      }).observe(document.querySelector('table.jobs'), { subtree: true, attributes: true, childList: true });
    });
    start(bin.worker, ['--coordinator', '127.0.0.1:' + port, '--threads', '1', '--name', 'browser-worker',
      '--checkpoint_dir', path.join(work, 'checkpoints')], 'worker.log');
    await page.waitForFunction(() => {
      const s = [...document.querySelectorAll('tr[data-job]')].map(t => t.dataset.state);
      return s.length === 4 && s.every(x => x === 'succeeded');
    }, { timeout: 180000, polling: 200 });
    check(await page.evaluate(() => window.__notReloaded === true), 'jobs went from queued to succeeded without a reload');
    check(seen.has('running') || seen.has('succeeded'), 'the job table changed live (states seen: ' + [...seen].join(', ') + ')');
    const ece = await page.$eval('tr[data-job] td:nth-child(9)', td => td.textContent);
    check(/^\d\.\d{4}$/.test(ece), 'live rows carry the latest ECE (' + ece + ')');

    // 3. The summary matches SummarizeSweep.
    await page.waitForSelector('#summary table tr[data-config]', { timeout: 15000 });
    await sleep(3500);  // the refresh after the last job ended
    const summary = JSON.parse(mixcal('summary', sweepId, '--vs', 'baseline', '--format', 'json'));
    const rows = summary.filter(r => r.split === 'test');
    for (const r of rows) {
      const st = Object.fromEntries(r.stats.map(s => [s.metric, s]));
      const text = await page.$eval(`#summary tr[data-config="${r.method}:${r.value}"]`, tr => tr.textContent);
      check(text.includes(st.ece.mean.toFixed(4)) && text.includes(st.accuracy.mean.toFixed(4)),
        `summary row ${r.method} shows SummarizeSweep's ECE ${st.ece.mean.toFixed(4)} and accuracy`);
      if (r.method !== 'baseline') {
        check(text.includes(st.ece.vs.mean.toFixed(4).replace(/^-0/, '-0')), 'summary row shows the paired difference to the baseline');
      }
    }
    const curvesOk = await page.$eval('#curves', img => img.complete && img.naturalWidth > 0);
    check(curvesOk, 'the curves figure (the CLI\'s SVG) renders');
    await page.screenshot({ path: path.join(artifacts, '2-sweep.png'), fullPage: true });
    // The sweep's events, read when opened: its submission among them.
    await page.$eval('#sweep-log', d => { d.open = true; });
    await page.waitForSelector('#sweep-log table.events', { timeout: 10000 });
    const log = await page.$eval('#sweep-log', d => d.textContent);
    check(log.includes('submitted') && log.includes('sweep'), 'the sweep page lists the sweep\'s events when opened');

    // 3b. The job table sorts by a column and filters by words.
    const seeds = () => page.$$eval('table.jobs tbody tr:not([hidden])', trs => trs.map(t => Number(t.children[3].textContent)));
    await page.click('table.jobs thead th:nth-child(4)');
    let order = await seeds();
    check(order.join() === [...order].sort((a, b) => a - b).join() && order[0] === 0, 'a click on "seed" sorts the jobs by seed (' + order + ')');
    await page.click('table.jobs thead th:nth-child(4)');
    order = await seeds();
    check(order[0] === 1 && order[order.length - 1] === 0, 'a second click sorts the other way (' + order + ')');
    await page.type('#job-filter', 'mixup');
    const shown = await page.$$eval('table.jobs tbody tr:not([hidden])', trs => trs.map(t => t.children[1].textContent));
    check(shown.length === 2 && shown.every(m => m === 'mixup'), 'filtering by "mixup" leaves its 2 jobs (' + shown + ')');
    check((await page.$eval('#job-filter-count', e => e.textContent)) === '2 of 4 jobs', 'the filter says how many it shows');
    // Two jobs ticked: their curves on one figure, their reliability diagrams side by side.
    await page.$eval('#job-filter', f => { f.value = ''; f.dispatchEvent(new Event('input')); });
    const picks = await page.$$('table.jobs td.pick');
    await picks[0].click();
    await picks[picks.length - 1].click();
    await page.waitForFunction(() => {
      const c = document.getElementById('compare-curves');
      return c && c.complete && c.naturalWidth > 0 && document.querySelectorAll('img.compare-rel').length === 2;
    }, { timeout: 10000 });
    const cmpSvg = await page.evaluate(async () => (await fetch(document.getElementById('compare-curves').src)).text());
    check((cmpSvg.match(/job \d+: /g) || []).length === 2 && cmpSvg.includes('2 jobs compared'),
      'two ticked jobs are overlaid on one curves figure, with a reliability diagram each');
    await page.waitForFunction(() => {
      const c = document.getElementById('compare-reliability');
      return c && c.complete && c.naturalWidth > 0;
    }, { timeout: 10000 });
    const relSvg = await page.evaluate(async () => (await fetch(document.getElementById('compare-reliability').src)).text());
    check((relSvg.match(/job \d+: .*?\(ECE /g) || []).length === 2 && relSvg.includes('perfect calibration') &&
          relSvg.includes('2 jobs compared'), 'the two ticked jobs\' reliability curves are overlaid on one axes, each with its ECE');
    // A figure downloads as PNG (drawn from its SVG in the page).
    const downloads = path.join(work, 'downloads');
    fs.mkdirSync(downloads, { recursive: true });
    const cdp = await page.target().createCDPSession();
    await cdp.send('Page.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    await page.$$eval('figure.fig figcaption a', as => as.find(a => a.textContent === 'PNG').click());
    let png = null;
    for (let i = 0; i < 100 && !png; i++) {
      png = fs.readdirSync(downloads).find(f => f.endsWith('.png'));
      if (!png) await sleep(100);
    }
    check(png && fs.readFileSync(path.join(downloads, png)).slice(1, 4).toString() === 'PNG', 'a figure downloads as a PNG file (' + png + ')');

    // 4. A job's reliability diagram at a chosen epoch.
    const jobId = sweep.job_ids[0];
    await page.goto(dash + '/job/' + jobId, { waitUntil: 'networkidle2' });
    await page.waitForSelector('#epoch');
    await page.$eval('#epoch', s => { s.value = '2'; s.dispatchEvent(new Event('input')); });
    await page.waitForFunction(() => {
      const img = document.getElementById('reliability');
      return img.src.includes('epoch=2') && img.complete && img.naturalWidth > 0;
    }, { timeout: 10000 });
    const svg = await page.evaluate(async () => (await fetch(document.getElementById('reliability').src)).text());
    check(svg.includes('epoch 2, test') && svg.includes('<rect'), 'the reliability diagram renders for epoch 2');
    check((await page.$eval('#epoch-label', e => e.textContent)) === 'epoch 2', 'the slider names the epoch shown');
    await page.$eval('#epoch2', s => { s.value = '4'; s.dispatchEvent(new Event('input')); });
    await page.waitForFunction(() => {
      const img = document.getElementById('reliability2');
      return img.src.includes('epoch=4') && img.complete && img.naturalWidth > 0;
    }, { timeout: 10000 });
    check(true, 'the same job at a second epoch (4) is drawn beside epoch 2');
    const settings = await page.$eval('table.settings', t => t.textContent);
    // The spec left batch size and bins empty: their defaults are shown, not 0.
    check(settings.includes('training.batch_size128') && settings.includes('evaluation.ece_bins15') &&
          settings.includes('training.milestones'), 'the job page lists the settings it trained with, defaults filled in');
    const config = await page.$eval('table.config:not(.settings)', t => t.textContent);
    check(config.includes('training.epochs') && config.includes('method.name'), 'the job page lists the job\'s configuration as submitted');
    await page.screenshot({ path: path.join(artifacts, '3-job.png'), fullPage: true });

    // 5. Workers.
    await page.goto(dash + '/workers', { waitUntil: 'networkidle2' });
    await page.waitForSelector('table.workers');
    const workers = await page.$eval('table.workers', t => t.textContent);
    check(workers.includes('browser-worker') && workers.includes('cpu'), 'the workers page lists the worker and its device');
    await page.screenshot({ path: path.join(artifacts, '4-workers.png'), fullPage: true });

    // 6. The coordinator goes down: a clear message; it comes back: recovered.
    const oldPort = port;
    await stop(coordinator);
    await page.goto(dash + '/', { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => !document.getElementById('banner').hidden, { timeout: 15000 });
    const message = await page.$eval('#banner', b => b.textContent);
    check(message.includes('cannot reach the coordinator'), 'with the coordinator down the page says so: "' + message.slice(0, 90) + '…"');
    await page.screenshot({ path: path.join(artifacts, '5-coordinator-down.png'), fullPage: true });
    await startCoordinator(oldPort);
    await page.waitForFunction(id => document.getElementById('banner').hidden &&
      document.querySelector(`tr[data-sweep="${id}"]`) !== null, { timeout: 30000 }, sweepId);
    check(true, 'the page recovers by itself when the coordinator is back');
    await page.screenshot({ path: path.join(artifacts, '6-recovered.png'), fullPage: true });
  } finally {
    await browser.close();
  }
  console.log(`${checks} checks passed; screenshots in ${artifacts}`);
}

main().then(async () => {
  for (const p of procs) await stop(p);
  if (!process.env.MIXCAL_KEEP_TEST_DIRS) fs.rmSync(work, { recursive: true, force: true });
  process.exit(0);
}, async e => {
  console.error(e.stack || e);
  for (const f of ['coordinator.log', 'worker.log', 'dashboard.log']) {
    const p = path.join(work, f);
    if (fs.existsSync(p)) console.error(`--- ${f}\n` + fs.readFileSync(p, 'utf8').slice(-3000));
  }
  for (const p of procs) await stop(p);
  process.exit(1);
});
