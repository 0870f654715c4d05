// UI test in a real editor (code-server + headless chromium) of partial fusion (issue 28), in one scenario:
//  - Fuse Models on the two bundled ViTs: the preset prompt offers partial fusion; K = 2 of 3 blocks shared and
//    "measure the curve" are chosen there, then the Exact preset, calibration and held-out evaluation data;
//  - run.json records the recipe's K and one curve point per K (0 … 3);
//  - the run panel's Partial fusion section: the chart is drawn (non-blank canvas) with one point per K on the
//    curve and exactly one chosen point (K = 2, at its size and accuracy); the table's K, parameters and accuracy
//    equal run.json's, the chosen row is marked, the parents are listed at their own sizes; the chosen K's trunk
//    (chosen on held-out calibration rows) is in run.json with every candidate's score, and in its table row;
//  - at 230 px the section fits (no horizontal overflow);
//  - Save as Hugging Face Folder on that run is refused with the reason, and offers the ONNX model.
// Run: npm run build --silent && node scripts/e2e/ui-pareto.mjs. Final line: `N passed, N failed`.
import fs from 'node:fs';
import path from 'node:path';
import { checkTools, endScenario, launchBrowser, log, makeWorkspace, REPO, scratchRoot, startCodeServer } from './lib.mjs';
import {
  T,
  canvasColours,
  check,
  explorerMenu,
  focusAlignment,
  palette,
  pickQuick,
  pickQuickExact,
  quickRows,
  sideBarWidth,
  waitForRun,
  webviewFrame,
} from './ui-lib.mjs';

const root = scratchRoot('ui-pareto');
T.shots = path.join(root, 'shots');
T.root = root;
fs.mkdirSync(T.shots, { recursive: true });
let server, browser, harnessError;
const page = () => T.page;
const shot = (name) => page().screenshot({ path: path.join(T.shots, name) });
const row = (name) => page().locator(`.explorer-folders-view .monaco-list-row[aria-label^="${name}"]`).first();
const CHOSEN_K = 2;

try {
  checkTools();
  const ws = makeWorkspace(root);
  T.ws = ws;
  server = await startCodeServer(root, ws, { settings: { 'workbench.colorTheme': 'Default Dark Modern' } });
  log(`code-server on :${server.port} (scratch ${root})`);
  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  T.page = await ctx.newPage();
  await page().goto(server.url([['extensionDevelopmentPath', server.remote(REPO)]]));
  const runsRoot = path.join(ws, '.otfuse', 'runs');
  const known = () => new Set(fs.existsSync(runsRoot) ? fs.readdirSync(runsRoot) : []);

  await check('workbench and explorer ready', async () => {
    await page().locator('.monaco-workbench').waitFor({ timeout: 120000 });
    const folder = row('examples');
    await folder.waitFor({ timeout: 120000 });
    if (!(await row('vit48_s10.onnx').count())) await folder.click();
    await row('vit48_s11.onnx').waitFor({ timeout: 30000 });
  });

  let runDir, record;
  await check(`[28] Fuse Models → "Partial fusion…" → K = ${CHOSEN_K} + measure the curve → Exact: run.json has one point per K`, async () => {
    const before = known();
    await explorerMenu([row('vit48_s10.onnx'), row('vit48_s11.onnx')], 'Fuse Models');
    await pickQuick('anchor', 'vit48_s10', 'vit48_s10.onnx');
    await pickQuick('preset', 'Partial fusion', 'Partial fusion');
    // K from the anchor's depth (3 blocks): the curve-only entry (K = 3), then K = 2, 1, 0.
    const ks = await quickRows('how many blocks to share');
    const labels = ks.map((r) => r.label.replace(/^\$\([\w-]+\)\s*/, ''));
    if (!/^K = 3: all blocks fused/.test(labels[0]) || labels.slice(1).join('|') !== 'K = 2|K = 1|K = 0') throw new Error(`K choices: ${labels.join(' | ')}`);
    await pickQuickExact('how many blocks to share', `K = ${CHOSEN_K}`, `K = ${CHOSEN_K}`);
    await pickQuick('also measure', 'Measure the curve', 'Measure the curve');
    // The preset prompt again, saying what was chosen.
    await quickTitle(/preset \(K = 2 of 3 blocks shared · curve over every K\)/);
    await pickQuick('preset', 'Exact', 'Exact');
    await pickQuickExact('calibration data', 'calib200', 'calib200.npz');
    await pickQuickExact('evaluation data', 'fmnist-test', 'fmnist-test-2k.json');
    ({ runDir, record } = await waitForRun(runsRoot, before));
    const p = record.partial;
    if (record.recipe.mergeLayers !== CHOSEN_K || record.recipe.pareto !== true) throw new Error(`recipe ${JSON.stringify(record.recipe)}`);
    if (!p || p.mergeLayers !== CHOSEN_K || p.layers !== 3) throw new Error(`partial ${JSON.stringify(p)}`);
    if (p.points?.map((q) => q.mergeLayers).join() !== '0,1,2,3' || p.points.some((q) => !(q.accuracy > 0.1)))
      throw new Error(`points ${JSON.stringify(p.points)}`);
    log(`curve: ${p.points.map((q) => `K=${q.mergeLayers} ${q.parameters} ${(100 * q.accuracy).toFixed(2)}%`).join(' · ')}`);
  });

  await check('[28] the run panel draws the curve: one point per K, the chosen K marked once, the table = run.json', async () => {
    await focusAlignment();
    const frame = await webviewFrame('alignment', 60000, '#pareto-chart');
    await frame.waitForFunction((dir) => document.body.dataset.run === dir, runDir, { timeout: 60000 });
    await frame.waitForFunction(() => document.getElementById('pareto-chart')?.dataset.drawn === '1', null, { timeout: 30000 });
    await frame.evaluate(() => document.getElementById('partial').scrollIntoView({ block: 'start' }));
    // The panel may redraw the section (a new canvas) while it is read: look again for up to 10 s before calling it blank.
    let colours = 0;
    for (const until = Date.now() + 10000; colours < 3 && Date.now() < until;) {
      colours = await canvasColours(frame, '#pareto-chart[data-drawn="1"] canvas').catch(() => 0);
      if (colours < 3) await frame.waitForTimeout(250);
    }
    if (colours < 3) throw new Error('the Pareto chart canvas is blank');
    const points = record.partial.points;
    const chosen = points.find((q) => q.mergeLayers === CHOSEN_K);
    // The plotted data (uPlot's aligned arrays): x = parameters; the curve has one value per K, the chosen series one.
    const plotted = await frame.evaluate(() => {
      const plot = document.getElementById('pareto-chart').plot;
      return { data: plot.data.map((s) => [...s]), labels: plot.series.map((s) => s.label) };
    });
    const xs = plotted.data[0];
    const curve = xs.flatMap((x, i) => (plotted.data[1][i] === null ? [] : [[x, plotted.data[1][i]]]));
    const expected = [...points].sort((a, b) => a.parameters - b.parameters).map((q) => [q.parameters, q.accuracy]);
    if (JSON.stringify(curve) !== JSON.stringify(expected)) throw new Error(`curve ${JSON.stringify(curve)} vs run.json ${JSON.stringify(expected)}`);
    const marked = xs.flatMap((x, i) => (plotted.data[2][i] === null ? [] : [[x, plotted.data[2][i]]]));
    if (JSON.stringify(marked) !== JSON.stringify([[chosen.parameters, chosen.accuracy]]) || plotted.labels[2] !== `chosen (K = ${CHOSEN_K})`)
      throw new Error(`chosen series ${plotted.labels[2]}: ${JSON.stringify(marked)}`);
    const parents = record.metrics.filter((m) => m.role === 'parent' || m.role === 'anchor');
    if (plotted.data.length !== 3 + parents.length) throw new Error(`${plotted.data.length - 1} series for ${parents.length} parents`);
    // The table: the same numbers, the chosen row marked, then the parents.
    const rows = await frame.evaluate(() =>
      [...document.querySelectorAll('#pareto-table tbody tr')].map((tr) => ({
        kind: tr.dataset.kind,
        k: tr.dataset.k,
        parameters: tr.dataset.parameters,
        value: tr.dataset.value,
        chosen: tr.dataset.chosen,
        trunk: tr.dataset.trunk,
        text: tr.textContent,
      })),
    );
    const curveRows = rows.filter((r) => r.kind !== 'parent');
    const want = points.map((q) => ({
      k: String(q.mergeLayers),
      parameters: String(q.parameters),
      value: String(q.accuracy),
      chosen: String(q.mergeLayers === CHOSEN_K),
    }));
    const got = curveRows.map(({ k, parameters, value, chosen }) => ({ k, parameters, value, chosen }));
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`table ${JSON.stringify(got)}\nrun.json ${JSON.stringify(want)}`);
    for (const [r, q] of curveRows.map((r, i) => [r, points[i]]))
      if (!r.text.includes(`${(100 * q.accuracy).toFixed(2)}%`) || !r.text.includes(q.parameters.toLocaleString('en-US')))
        throw new Error(`row text '${r.text}'`);
    if (curveRows[0].kind !== 'ensemble' || curveRows.at(-1).kind !== 'full') throw new Error(`kinds ${curveRows.map((r) => r.kind)}`);
    const parentRows = rows.filter((r) => r.kind === 'parent');
    if (parentRows.map((r) => r.value).join() !== parents.map((m) => String(m.accuracy)).join()) throw new Error(`parent rows ${JSON.stringify(parentRows)}`);
    // Each parent at its own parameter count (run.json partial.modelParameters), not the anchor's.
    const own = parents.map((m) => String(record.partial.modelParameters?.[m.model]));
    if (parentRows.map((r) => r.parameters).join() !== own.join()) throw new Error(`parent sizes ${parentRows.map((r) => r.parameters)} vs run.json ${own}`);
    // The chosen K's trunk was chosen on held-out calibration rows: recorded with every candidate's score, shown in the row.
    const p = record.partial;
    if (!p.trunk || !(p.candidates?.length >= 2) || p.candidates.some((c) => !Number.isFinite(c.heldOutKl)) || !p.candidates.some((c) => c.trunk === p.trunk))
      throw new Error(`trunk choice ${JSON.stringify({ trunk: p.trunk, candidates: p.candidates, heldOut: p.heldOut })}`);
    if (curveRows.find((r) => r.k === String(CHOSEN_K))?.trunk !== p.trunk) throw new Error(`chosen row's trunk ${JSON.stringify(curveRows)}`);
    const caption = await frame.evaluate(() => document.querySelector('#pareto-table caption').textContent);
    if (!/measured on fmnist-test-2k\.json/.test(caption)) throw new Error(`caption '${caption}'`);
    await palette('Notifications: Clear All Notifications');
    await shot('01-pareto.png');
    // A 230 px side bar: no horizontal overflow, the table's last column in view (short headers), chart redrawn.
    await sideBarWidth(230);
    await frame.waitForFunction(() => document.getElementById('pareto-chart')?.dataset.drawn === '1', null, { timeout: 30000 });
    const m = await frame.evaluate(() => {
      const t = document.getElementById('pareto-table');
      return { page: document.documentElement.scrollWidth - window.innerWidth, table: t.scrollWidth - t.parentElement.clientWidth, width: window.innerWidth };
    });
    await frame.evaluate(() => document.getElementById('partial').scrollIntoView({ block: 'start' }));
    await shot('01b-pareto-230.png');
    await sideBarWidth(560);
    if (m.page > 1 || m.table > 1) throw new Error(`at ${m.width}px: ${m.page}px page overflow, ${m.table}px table overflow`);
  });

  await check('[28] Save as Hugging Face Folder on the partial run: refused up front with the reason, the ONNX model offered', async () => {
    const runRow = page().locator('.part.sidebar .monaco-list-row', { hasText: record.name }).first();
    await runRow.waitFor({ timeout: 30000 });
    await runRow.click({ button: 'right' });
    const item = page().locator('.monaco-menu .action-label', { hasText: 'Save as Hugging Face Folder' }).first();
    await item.waitFor({ timeout: 10000 });
    await item.click();
    // A click can land while the menu re-renders (as in explorerMenu): click again while it is still open.
    for (let i = 0; i < 3; i++) {
      try {
        await page().locator('.monaco-menu').first().waitFor({ state: 'hidden', timeout: 2000 });
        break;
      } catch {
        await item.click().catch(() => {});
      }
    }
    const toast = page().locator('.notifications-toasts .notification-toast', { hasText: 'partial fusion' }).first();
    await toast.waitFor({ timeout: 30000 });
    const text = await toast.textContent();
    if (!/no Hugging Face model class computes/.test(text) || !/Reveal ONNX Model/.test(text)) throw new Error(`notification: ${text}`);
    // No folder prompt came first: the refusal is immediate.
    if (await page().locator('.quick-input-widget .quick-input-title', { hasText: 'Hugging Face' }).isVisible()) throw new Error('a folder prompt was shown');
    await shot('02-hf-refused.png');
    if (fs.readdirSync(ws).some((f) => f.endsWith('-hf'))) throw new Error('an HF folder was written');
  });
} catch (err) {
  harnessError = err ?? new Error('harness error');
} finally {
  await endScenario(T, root, { browser, server, err: harnessError });
}

/** Waits for the open quick pick's title to match. */
async function quickTitle(re) {
  await page().locator('.quick-input-widget .quick-input-title', { hasText: re }).waitFor({ timeout: 30000 });
}
