// UI test in a real editor (code-server + headless chromium) of issue 27's editor side — what a user sees:
//  - the Explorer's ctrl-click multi-select on the BERT models registers both models, every time (the flaky test);
//  - a model fused (Exact) with a neuron-permuted copy of itself: "Sort by match" shows every map as the identity
//    diagonal (asserted on the canvas pixels and on the top-k table), the picked layer's map stays in view;
//  - progress while finetuning: stage in words, elapsed time and the time left; the run's tag is not DONE;
//  - the finetune picker never offers the evaluation data; a byte-identical copy of it is refused in the panel,
//    both files named;
//  - a Hugging Face folder fused from its own context menu (partner picked), its model.safetensors opened in the
//    model view under the folder's name, the log colour scale on its soft maps;
//  - the Open Run / Compare pickers show the fused accuracy and say so; Compare draws both maps on one scale.
// Screenshots go to <scratch>/shots (kept). Run: OTFUSE_E2E_PREFIX=/work/main/.e2e node scripts/e2e/ui-prov.mjs
// OTFUSE_UI_REPRO=N also measures the old multi-select (no wait for the opened editor) N times and logs how often
// it lost the selection (a diagnostic, never asserted). Final line: `N passed, N failed`.
import fs from 'node:fs';
import path from 'node:path';
import { checkTools, endScenario, launchBrowser, log, makeWorkspace, REPO, scratchRoot, startCodeServer } from './lib.mjs';
import { permutedCopy } from './fixtures.mjs';
import { PNG } from 'pngjs';
import {
  T,
  acceptSave,
  check,
  checkHeatmaps,
  explorerMenu,
  focusAlignment,
  modelFrame,
  palette,
  pickQuick,
  pickQuickExact,
  quick,
  quickRows,
  readRecord,
  screenshot,
  sideBarWidth,
  waitForRun,
  webviewFrame,
} from './ui-lib.mjs';

const root = scratchRoot('ui-prov');
T.shots = path.join(root, 'shots');
T.root = root;
fs.mkdirSync(T.shots, { recursive: true });
let server, browser, harnessError;
const page = () => T.page;
const shot = (name) => page().screenshot({ path: path.join(T.shots, name) });

/** An Explorer row by its file name (aria-label starts with it). */
const row = (name) => page().locator(`.explorer-folders-view .monaco-list-row[aria-label^="${name}"]`).first();

/** Expands a top-level folder of the workspace until `child` shows (a click toggles it). */
async function expand(folder, child) {
  const f = row(folder);
  await f.waitFor({ timeout: 60000 });
  for (let i = 0; i < 6 && !(await row(child).isVisible()); i++) {
    if ((await f.getAttribute('aria-expanded')) !== 'true') await f.click();
    await row(child)
      .waitFor({ timeout: 2000 })
      .catch(() => {});
  }
  await row(child).waitFor({ timeout: 30000 });
}

/** The title of the picker Fuse Models opens after the Explorer's menu: the anchor prompt (both models arrived) or
 * the partner prompt (one model arrived); closes it. */
async function fusePromptTitle() {
  const title = quick().locator('.quick-input-title', { hasText: /anchor|needs at least one partner/ });
  await title.waitFor({ state: 'visible', timeout: 60000 });
  const text = await title.textContent();
  await page().keyboard.press('Escape');
  await title.waitFor({ state: 'hidden', timeout: 10000 });
  return text;
}

/** Closes every editor (the command is not offered when none is open). */
async function closeEditors() {
  if (!(await page().locator('.part.editor .tabs-container .tab').count())) return;
  await palette('View: Close All Editors').catch(async (err) => {
    await shot('debug-close-all.png');
    throw err;
  });
  await page().locator('.part.editor .tabs-container .tab').first().waitFor({ state: 'detached', timeout: 10000 });
}

async function collapse(folder) {
  const f = page().locator(`.explorer-folders-view .monaco-list-row[aria-label^="${folder}"][aria-expanded="true"]`).first();
  if (await f.count()) await f.click();
}

/** Which cells of the drawn heatmap are "high" (the top of the colour ramp) vs "low", sampled at cell centres. */
const diagonalPixels = (frame) =>
  frame.evaluate(() => {
    const c = document.getElementById('heatmap');
    const ctx = c.getContext('2d');
    const n = Number(c.dataset.rows);
    const m = Number(c.dataset.cols);
    const at = (i, j) => ctx.getImageData(Math.floor(((j + 0.5) / m) * c.width), Math.floor(((i + 0.5) / n) * c.height), 1, 1).data;
    const high = (p) => p[0] > 180 && p[1] > 190; // viridis' yellow end (≥ 0.9 of the scale)
    const low = (p) => p[0] < 100 && p[1] < 40 && p[2] > 60; // viridis' purple start
    let diagHigh = 0;
    let offLow = 0;
    for (let k = 0; k < n; k++) {
      if (high(at(k, k))) diagHigh++;
      if (low(at(k, (k + Math.floor(m / 2)) % m))) offLow++;
    }
    return { n, m, diagHigh, offLow };
  });

/** A screenshot with the selected layer's map in view (the top of the Alignment view is the run's header). */
async function mapShot(frame, name) {
  await frame.evaluate(() => document.getElementById('detail-name').scrollIntoView({ block: 'start' }));
  await page().waitForTimeout(400);
  await shot(name);
}

async function selectLayer(frame, name) {
  const card = frame.locator('.thumb-card', { has: frame.locator('.thumb-name', { hasText: new RegExp(`^${name.replace(/\./g, '\\.')}$`) }) }).first();
  await card.click();
  await frame.waitForFunction((t) => document.getElementById('detail-name').textContent.startsWith(t), name, { timeout: 10000 });
}

try {
  checkTools();
  const ws = makeWorkspace(root);
  T.ws = ws;
  fs.mkdirSync(path.join(ws, 'perm'));
  await permutedCopy(path.join(ws, 'examples', 'vit48_s10.onnx'), path.join(ws, 'perm', 'vit48_s10_perm.onnx'), 7);
  for (const name of ['vit-fmnist-s11', 'vit-fmnist-s10-f16'])
    fs.cpSync(path.join(REPO, 'test', 'fixtures', 'hf', name), path.join(ws, 'hf', name), { recursive: true });
  // A byte-identical copy of the evaluation set under another name (training on it must be refused).
  fs.copyFileSync(path.join(ws, 'examples', 'data', 'fmnist-test-2k.json'), path.join(ws, 'examples', 'data', 'holdout-copy.json'));
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
    await expand('bert', 'bertD_s20.onnx');
  });

  const repro = Number(process.env.OTFUSE_UI_REPRO ?? 0);
  if (repro > 0) {
    // Diagnostic: the old multi-select (ctrl-click right after the plain click that opens the first model).
    let lost = 0;
    for (let i = 0; i < repro; i++) {
      await closeEditors();
      await explorerMenu([row('bertD_s20.onnx'), row('bertD_s21.onnx')], 'Fuse Models', undefined, { settle: false });
      if (/needs at least one partner/.test(await fusePromptTitle())) lost++;
    }
    log(`old multi-select: the second model was lost in ${lost} of ${repro} tries`);
  }

  await check('[flaky] ctrl-click multi-select of the BERT models registers both, 6 times in a row (model view opened fresh each time)', async () => {
    for (let i = 0; i < 6; i++) {
      await closeEditors();
      await explorerMenu([row('bertD_s20.onnx'), row('bertD_s21.onnx')], 'Fuse Models');
      const title = await fusePromptTitle();
      if (!/anchor/.test(title)) {
        await shot(`flaky-${i}.png`);
        throw new Error(`try ${i + 1}: the picker asks '${title}'`);
      }
    }
    await closeEditors();
  });

  await check('[9] a weight-based preset does not ask for calibration data (the next prompt is the evaluation data)', async () => {
    await explorerMenu([row('bertD_s20.onnx'), row('bertD_s21.onnx')], 'Fuse Models');
    await pickQuick('anchor', 'bertD_s20', 'bertD_s20.onnx');
    const presets = await quickRows('preset');
    // A first fuse in this workspace: the configured default is marked "default", not "last used".
    if (presets.some((r) => /last used/.test(r.text)) || !presets.some((r) => r.label === 'Recommended' && /default/.test(r.description)))
      throw new Error(`preset rows on a first fuse: ${presets.map((r) => `${r.label} ${r.description}`).join(' | ')}`);
    await pickQuick('preset', 'Weight-based', 'Weight-based');
    const next = quick().locator('.quick-input-title', { hasText: /calibration data|evaluation data/ });
    await next.waitFor({ state: 'visible', timeout: 30000 });
    const title = await next.textContent();
    if (!/evaluation data/.test(title)) throw new Error(`after Weight-based: '${title}'`);
    const rows = await quickRows('evaluation data');
    if (rows.some((r) => /Use the calibration data/.test(r.label))) throw new Error('"Use the calibration data" offered without calibration data');
    await shot('01b-weight-based-no-calibration.png');
    await page().keyboard.press('Escape');
    await next.waitFor({ state: 'hidden', timeout: 10000 });
    await closeEditors();
    await collapse('bert');
  });

  let permDir, permRecord, frame;
  await check('[5] vit48_s10 + its permuted copy → Fuse Models (Exact): every solved map is a permutation', async () => {
    await expand('examples', 'vit48_s10.onnx');
    await expand('perm', 'vit48_s10_perm.onnx');
    const before = known();
    await explorerMenu([row('vit48_s10.onnx'), row('vit48_s10_perm.onnx')], 'Fuse Models');
    await pickQuick('anchor', 'vit48_s10.onnx', 'vit48_s10.onnx');
    await pickQuick('preset', 'Exact', 'Exact');
    await pickQuickExact('calibration data', 'calib200', 'calib200.npz');
    await pickQuickExact('evaluation data', 'fmnist-test', 'fmnist-test-2k.json');
    ({ runDir: permDir, record: permRecord } = await waitForRun(runsRoot, before));
    const soft = permRecord.layers.filter((l) => l.kind !== 'residual' && l.diagnostics?.meanBestMatch !== undefined && !(l.diagnostics.meanBestMatch > 0.999));
    if (soft.length) throw new Error(`not permutations: ${soft.map((l) => `${l.name} ${l.diagnostics?.meanBestMatch}`).join(', ')}`);
    frame = await webviewFrame('alignment');
    await checkHeatmaps(frame, permDir, permRecord);
  });

  await check('[5] Sort by match: each permutation map shows as the identity diagonal (pixels and top-k table); off, it does not', async () => {
    const layers = permRecord.layers.filter((l) => l.kind !== 'residual' && l.rows === l.cols && l.diagnostics?.meanBestMatch > 0.999);
    if (layers.length < 4) throw new Error(`only ${layers.length} permutation maps to look at`);
    let scattered = 0;
    for (const [k, l] of layers.entries()) {
      await selectLayer(frame, l.name);
      // The full (unsorted) map and its top-k table have arrived.
      await frame.waitForFunction((t) => document.getElementById('top-slot').dataset.key === `${t}|raw`, l.tensor, { timeout: 10000 });
      const raw = await diagonalPixels(frame);
      if (raw.diagHigh < raw.n) scattered++;
      if (k === 0) await mapShot(frame, '01-unsorted.png');
      await frame.locator('#opt-sort').check();
      await frame.waitForFunction(
        (t) => document.getElementById('heatmap').dataset.sorted === '1' && document.getElementById('top-slot').dataset.key === `${t}|sorted`,
        l.tensor,
        { timeout: 10000 },
      );
      const sorted = await diagonalPixels(frame);
      if (sorted.diagHigh !== sorted.n || sorted.offLow !== sorted.n) throw new Error(`${l.name} sorted: ${JSON.stringify(sorted)}`);
      const table = await frame.evaluate(() => ({
        summary: document.querySelector('#top-matches summary').textContent,
        best: [...document.querySelectorAll('#top-table tbody tr')].map((tr) => Number(tr.querySelector('td').dataset.col)),
      }));
      if (!table.best.every((j, pos) => j === pos)) throw new Error(`${l.name}: top-1 matches in sorted order ${table.best.slice(0, 12)}…`);
      if (!new RegExp(`${l.rows} of ${l.rows} neurons put ≥ 90 %`).test(table.summary)) throw new Error(`${l.name}: ${table.summary}`);
      if (k === 0) {
        await frame.locator('#top-matches summary').click();
        await mapShot(frame, '02-sorted-by-match.png');
        await frame.locator('#top-matches summary').click();
      }
      await frame.locator('#opt-sort').uncheck();
    }
    // A random permutation leaves (almost) no cell on the diagonal: the unsorted maps must not look like identities.
    if (scattered < layers.length - 1) throw new Error(`only ${scattered} of ${layers.length} unsorted maps are off the diagonal`);
    log(`sort by match: ${layers.length} permutation maps drawn as the identity; ${scattered} scattered unsorted`);
  });

  await check('[#31] heatmap switch time: click a layer → its full map and top-k table drawn (reported, not asserted)', async () => {
    const tensors = permRecord.layers.map((l) => l.tensor);
    const ms = await frame.evaluate(async (ts) => {
      const out = [];
      for (const t of ts) {
        const t0 = performance.now();
        document.querySelector(`.thumb-card[data-tensor="${window.CSS.escape(t)}"]`).click();
        while (document.getElementById('top-slot').dataset.key !== `${t}|raw`) await new Promise((r) => window.requestAnimationFrame(r));
        out.push(performance.now() - t0);
      }
      return out;
    }, tensors);
    const sorted = [...ms].sort((a, b) => a - b);
    log(
      `heatmap switch over ${ms.length} layers (shared 2-core machine, headless chromium): median ${sorted[sorted.length >> 1].toFixed(0)} ms, max ${sorted.at(-1).toFixed(0)} ms`,
    );
  });

  await check('[5] a layer picked in the list (below the map) brings its map into view', async () => {
    await frame.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    const last = permRecord.layers[permRecord.layers.length - 1];
    await frame.locator(`.thumb-card[data-tensor="${last.tensor}"]`).click();
    await page().waitForTimeout(500);
    const r = await frame.evaluate(() => {
      const b = document.getElementById('heatmap').getBoundingClientRect();
      return { top: b.top, bottom: b.bottom, h: window.innerHeight };
    });
    if (r.top < 0 || r.top > r.h - 60) throw new Error(`heatmap at ${JSON.stringify(r)}`);
  });

  await check(
    '[7] Finetune: the evaluation data is not offered for training; progress shows stage, elapsed time and time left; the tag is not DONE meanwhile',
    async () => {
      await frame.evaluate(() => window.scrollTo(0, 0));
      await frame.locator('#btn-finetune').click();
      const rows = await quickRows('training data');
      const offered = rows.map((r) => r.label.replace(/^\$\([^)]*\)\s*/, ''));
      for (const bad of ['fmnist-test-2k.json', 'calib200.npz'])
        if (offered.includes(bad)) throw new Error(`${bad} offered for training: ${offered.join(', ')}`);
      await pickQuickExact('training data', 'fmnist-train', 'fmnist-train-5k.json');
      await frame.waitForFunction(() => /\d+ s elapsed/.test(document.getElementById('live-eta')?.textContent ?? ''), null, { timeout: 60000 });
      await frame.waitForFunction(() => /left/.test(document.getElementById('live-eta')?.textContent ?? ''), null, { timeout: 60000 });
      const seen = await frame.evaluate(() => ({
        eta: document.getElementById('live-eta').textContent,
        stage: document.getElementById('live-stage').textContent,
        tag: document.getElementById('run-status').textContent,
      }));
      const status = await page()
        .locator('.statusbar-item', { hasText: 'otfuse:' })
        .first()
        .textContent({ timeout: 5000 })
        .catch(() => '(not found)');
      if (seen.tag === 'DONE') throw new Error('the run is tagged DONE while its finetune runs');
      if (!/finetun/.test(seen.stage)) throw new Error(`stage '${seen.stage}'`);
      await screenshot(frame, '03-finetune-progress.png', undefined, { clear: false });
      log(`progress: ${seen.stage} | ${seen.eta} | tag ${seen.tag} | status bar '${status.trim()}'`);
      const end = Date.now() + 300000;
      while (!readRecord(permDir).finetune) {
        if (Date.now() > end) throw new Error('no finetune in run.json');
        await page().waitForTimeout(500);
      }
      await frame.waitForFunction(() => document.getElementById('run-status')?.textContent === 'DONE', null, { timeout: 60000 });
      // The exported loss chart has room for its legend and data line below the plot, and something drawn there.
      // Waited for and measured in one step: the panel may redraw the chart (a new canvas) between two separate calls.
      const plotH = await (
        await frame.waitForFunction(() => document.querySelector('#loss-curve[data-drawn="1"] canvas')?.getBoundingClientRect().height || 0, null, {
          timeout: 10000,
        })
      ).jsonValue();
      await frame.locator('#btn-export-loss').click();
      const file = await acceptSave(`${permRecord.name}-loss.png`.replace(/[^\w.-]+/g, '_'));
      const png = PNG.sync.read(fs.readFileSync(file));
      const below = Math.round(plotH + 22 + 8); // title + plot (device pixel ratio 1 in headless chromium)
      const px = (x, y) => png.data.subarray(4 * (y * png.width + x), 4 * (y * png.width + x) + 3).join();
      const bg = px(0, 0);
      let ink = 0;
      for (let y = below; y < png.height; y++) for (let x = 0; x < png.width; x++) if (px(x, y) !== bg) ink++;
      if (png.height < below + 3 * 16 || ink < 200) throw new Error(`loss PNG ${png.width}×${png.height}: ${ink} drawn pixels below the plot`);
      log(`loss PNG ${png.width}×${png.height}: ${ink} pixels of legend and data line below the plot`);
    },
  );

  await check('[1] training on a byte-identical copy of the evaluation data is refused in the panel, both files named', async () => {
    await frame.locator('#btn-finetune').click();
    await pickQuickExact('training data', 'holdout-copy', 'holdout-copy.json');
    await frame.waitForSelector('#live.live-failed .error', { timeout: 30000 });
    const text = await frame.locator('#live .error').textContent();
    if (!/holdout-copy\.json/.test(text) || !/fmnist-test-2k\.json/.test(text) || !/byte-identical/.test(text)) throw new Error(`panel says: ${text}`);
    await screenshot(frame, '04-refused-in-panel.png', undefined, { clear: false });
    if (readRecord(permDir).finetune.steps === undefined) throw new Error('the earlier finetune record is gone');
    await frame.locator('#btn-dismiss').click();
  });

  let hfDir, hfRecord;
  await check('[8] an HF folder → its context menu → Fuse Models; the partner folder picked; both folders fused', async () => {
    await palette('View: Show Explorer');
    for (const f of ['examples', 'perm']) await collapse(f);
    await expand('hf', 'vit-fmnist-s11');
    const before = known();
    await explorerMenu([row('vit-fmnist-s11')], 'Fuse Models', '05-hf-folder-menu.png');
    const widget = quick();
    await widget.locator('.quick-input-title', { hasText: 'needs at least one partner' }).waitFor({ timeout: 60000 });
    await widget.locator('.quick-input-box input').fill('vit-fmnist-s10-f16');
    const partner = widget.locator('.monaco-list-row', { hasText: 'vit-fmnist-s10-f16' }).first();
    await partner.waitFor({ timeout: 10000 });
    // (The folder the menu was opened on is ticked already: "1 Selected"; a click on a row ticks it too.)
    await partner.locator('.label-name').first().click();
    await widget.locator('.quick-input-count', { hasText: '2 Selected' }).waitFor({ timeout: 10000 });
    await shot('06-hf-partner.png');
    await widget.locator('.quick-input-action .monaco-button, .monaco-button', { hasText: 'OK' }).first().click();
    await pickQuick('anchor', 'vit-fmnist-s11', 'vit-fmnist-s11');
    await pickQuick('preset', 'Recommended', 'Recommended');
    await pickQuickExact('calibration data', 'calib200', 'calib200.npz');
    await pickQuickExact('evaluation data', 'fmnist-test', 'fmnist-test-2k.json');
    ({ runDir: hfDir, record: hfRecord } = await waitForRun(runsRoot, before));
    const names = hfRecord.models.map((m) => path.basename(m)).sort();
    if (JSON.stringify(names) !== JSON.stringify(['vit-fmnist-s10-f16', 'vit-fmnist-s11'])) throw new Error(`models ${names}`);
  });

  await check('[8] model.safetensors opens in the model view, named by its folder', async () => {
    await palette('Go to File...');
    await quick().locator('.quick-input-box input').fill('hf/vit-fmnist-s11/model.safetensors');
    await quick().locator('.monaco-list-row', { hasText: 'model.safetensors' }).first().click();
    const model = await modelFrame('vit-fmnist-s11', 60000);
    await model.waitForSelector('#model-summary', { timeout: 30000 });
    await shot('07-safetensors-model-view.png');
    await closeEditors();
  });

  await check('[5] log colour scale on a soft (Sinkhorn) map: the scale says so, more of the map becomes visible', async () => {
    await focusAlignment();
    await frame.waitForFunction((d) => document.body.dataset.run === d, hfDir, { timeout: 30000 });
    const l = hfRecord.layers.find((x) => x.kind !== 'residual' && x.diagnostics?.meanBestMatch < 0.9) ?? hfRecord.layers[0];
    await selectLayer(frame, l.name);
    await frame.waitForFunction((t) => document.getElementById('heatmap').dataset.tensor === t, l.tensor, { timeout: 10000 });
    const colours = () =>
      frame.evaluate(() => {
        const c = document.getElementById('heatmap');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        // Cells that are not the ramp's bottom colour: mass the view makes visible.
        let visible = 0;
        for (let k = 0; k < d.length; k += 4) if (!(d[k] < 80 && d[k + 1] < 20)) visible++;
        return visible / (d.length / 4);
      });
    const linear = await colours();
    await frame.locator('#opt-log').check();
    await frame.waitForFunction(() => document.getElementById('heatmap').dataset.scale === 'log', null, { timeout: 10000 });
    const logged = await colours();
    const scale = await frame.locator('#scale').textContent();
    if (!/log colour scale from \S+ to \S+/.test(scale)) throw new Error(`scale: ${scale}`);
    if (!(logged > linear)) throw new Error(`log scale shows ${logged} of the map vs ${linear} linear`);
    await mapShot(frame, '08-log-scale.png');
    log(`${l.name}: visible share ${linear.toFixed(3)} linear → ${logged.toFixed(3)} log; ${scale}`);
    await frame.locator('#opt-log').uncheck();
  });

  await check('[3][5] Open Run / Compare pickers show the fused accuracy and say so; Compare draws both maps on one scale', async () => {
    // From the palette with the HF run shown: "Compare <it> with…" lists the other runs.
    await palette('otfuse: Compare Runs');
    const rows = await quickRows('Compare');
    const perm = rows.find((r) => r.label === permRecord.name || r.label.startsWith(`${permRecord.name} (`));
    const fused = permRecord.metrics.find((m) => m.label === 'ot').accuracy;
    if (!perm || !perm.text.includes(`fused ${(100 * fused).toFixed(2)}% on fmnist-test-2k.json`)) throw new Error(`picker row: ${perm?.text}`);
    await shot('09-compare-picker.png');
    await pickQuick('Compare', permRecord.name, permRecord.name);
    const cmp = await webviewFrame('compare', 30000, '#compare-recipe');
    const common = permRecord.layers.map((l) => l.name).find((n) => n !== permRecord.layers[0].name && hfRecord.layers.some((l) => l.name === n));
    if (!common) throw new Error('no layer in both runs');
    await cmp.selectOption('#compare-layer', common);
    await cmp.waitForFunction(
      (n) => document.body.dataset.compared === n && document.querySelectorAll('canvas.compare-map[data-drawn="1"]').length === 2,
      common,
      {
        timeout: 15000,
      },
    );
    const s = await cmp.evaluate(() => {
      const maps = [...document.querySelectorAll('canvas.compare-map')].map((c) => [c.dataset.scaleMin, c.dataset.scaleMax]);
      const bars = [...document.querySelectorAll('canvas.compare-bar')].map((c) => {
        const d = c.getContext('2d').getImageData(0, 0, 12, c.height).data;
        let h = 0;
        for (let k = 0; k < d.length; k++) h = (h * 31 + d[k]) >>> 0;
        return h;
      });
      return { maps, bars, note: document.getElementById('compare-scale')?.textContent ?? '' };
    });
    if (s.maps.length !== 2 || JSON.stringify(s.maps[0]) !== JSON.stringify(s.maps[1])) throw new Error(`scales ${JSON.stringify(s.maps)}`);
    if (s.bars[0] !== s.bars[1]) throw new Error('the two colour bars differ');
    if (!/^One colour scale for every map here/.test(s.note)) throw new Error(`note: ${s.note}`);
    await screenshot(null, '10-compare-shared-scale.png');
    log(`compare ${common}: ${s.note}`);
    await palette('View: Close Editor');
  });

  await check('[9] at 230 px the accuracy table keeps its Δ and Loss columns (wrapped), with no horizontal overflow', async () => {
    await focusAlignment();
    await frame.evaluate(() => window.scrollTo(0, 0));
    const w = await sideBarWidth(230);
    await page().waitForTimeout(800);
    const m = await frame.evaluate(() => {
      const cells = (sel) => [...document.querySelectorAll(sel)].map((e) => e.getBoundingClientRect());
      const visible = (rs) => rs.length > 0 && rs.every((r) => r.width > 10 && r.right <= window.innerWidth + 1);
      return {
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        delta: visible(cells('#accuracy .delta')),
        loss: visible(cells('#accuracy .loss')),
        width: window.innerWidth,
      };
    });
    await palette('Notifications: Clear All Notifications');
    const sb = await page().locator('.part.sidebar').boundingBox();
    await page().screenshot({ path: path.join(T.shots, '11-narrow-230.png'), clip: { x: sb.x, y: sb.y, width: sb.width, height: Math.min(sb.height, 980) } });
    await sideBarWidth(560);
    if (m.overflow > 1) throw new Error(`${m.overflow}px horizontal overflow at ${m.width}px`);
    if (!m.delta || !m.loss) throw new Error(`Δ/Loss columns at ${m.width}px (side bar ${w}px): ${JSON.stringify(m)}`);
  });

  await check('no style attributes in the Alignment view after all of the above (strict CSP)', async () => {
    const styled = await frame.evaluate(() =>
      [...document.body.querySelectorAll('[style]')].filter((e) => !e.matches('canvas, .bar, .uplot, .uplot *')).map((e) => e.outerHTML.slice(0, 80)),
    );
    if (styled.length) throw new Error(`style attributes: ${styled.join(', ')}`);
  });
} catch (err) {
  harnessError = err ?? new Error('harness error');
} finally {
  await endScenario(T, root, { browser, server, err: harnessError });
}
