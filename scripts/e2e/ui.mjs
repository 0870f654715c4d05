// UI test in a real editor: code-server + headless chromium, the way a researcher uses otfuse (issue 17):
//  - one model selected → Fuse Models explains why it needs two; two selected → right-click → Fuse Models;
//  - the data picker ranks files by the model's inputs (N and shapes shown; BERT token sets "do not fit" a ViT);
//    evaluation data is asked for separately (held-out set first) and the table says what it was measured on;
//  - the Alignment view: one non-blank heatmap per layer, colour bar + scale, most informative layer selected,
//    overview chart across depth, labelled diagnostics, hover read-out, keyboard, "open large";
//  - exports: heatmap PNG, map CSV/NPY, accuracy CSV/Markdown, loss-curve PNG (through the Save dialog);
//  - Finetune: button disabled while the job runs, live progress, ot+finetune and anchor+finetune rows;
//  - lineage in fused.onnx shown in the model view; a broken provider setting: the model view still works, the
//    error offers Open Settings/Retry, the failed job is a dismissible line; Retry works after the fix;
//  - Re-run with edits (recipe form → *.otfuse.json → new run) and Compare (recipes diffed, accuracy merged,
//    same layer side by side);
//  - the side panel at 230 px in light, dark and high-contrast themes;
//  - BERT encoders (three int64 inputs), and a run evaluated on its calibration data, labelled as such;
//  - no request leaves the machine; strict CSP.
// Screenshots go to the scratch folder; OTFUSE_UPDATE_SCREENSHOTS=1 also refreshes the README's in media/.
// OTFUSE_UI_VSIX=<file.vsix>: the same scenario against the packaged extension. Final line: `N passed, N failed`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { bertFixtures, checkTools, endScenario, launchBrowser, log, makeWorkspace, REPO, scratchRoot, startCodeServer } from './lib.mjs';
import {
  T,
  acceptSave,
  canvasColours,
  check,
  checkAccuracyTable,
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

// "Recommended" is the engine's auto-tune: the Q/K maps are those of the recipe it chose (separate Q and K maps, or
// head-aware: one map for Q and K together).
const qMap = (names) => (names.includes('blocks.0.attn.qk') ? 'blocks.0.attn.qk' : 'blocks.0.attn.q');

const root = scratchRoot('ui');
T.shots = path.join(root, 'shots');
T.root = root;
fs.mkdirSync(T.shots, { recursive: true });
let server, browser, harnessError;
const fileSafe = (s) => s.replace(/[^\w.-]+/g, '_');
const informativeness = (l) => (Number.isFinite(l.diagnostics?.meanBestMatch) ? (l.diagnostics.meanBestMatch - 1 / l.cols) / (1 - 1 / l.cols) : -1);
const sha256 = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Opens a workspace file with Go to File (its default editor: the otfuse model view for .onnx). */
async function openFile(file) {
  await palette('Go to File...');
  const input = quick().locator('.quick-input-box input');
  await input.fill(path.relative(T.ws, file));
  const name = path.basename(file);
  const row = quick()
    .locator('.monaco-list-row', { hasText: name })
    .filter({ hasText: path.basename(path.dirname(file)) })
    .first();
  await row.waitFor({ timeout: 15000 });
  await row.click();
}

/** Picks a value in the Settings editor showing otfuse.executionProvider (opened by the extension's command). */
async function chooseInSettings(value) {
  const select = page().locator('.settings-editor .setting-item-contents select').first();
  await select.waitFor({ timeout: 20000 });
  await select.selectOption(value);
  await page().waitForTimeout(1000);
}

async function setProvider(value) {
  await palette('otfuse: Choose Execution Provider…');
  await chooseInSettings(value);
  await palette('View: Close Editor');
}

/** Switches the colour theme with the workbench's own picker. */
async function setTheme(label) {
  await palette('Preferences: Color Theme');
  await page().waitForTimeout(700);
  const input = quick().locator('.quick-input-box input');
  await input.fill(label);
  const row = quick()
    .locator('.monaco-list-row')
    .filter({ has: page().locator('.label-name', { hasText: new RegExp(`^${label}$`) }) })
    .first();
  await row.waitFor({ timeout: 10000 });
  await row.click();
  await quick().waitFor({ state: 'hidden', timeout: 10000 });
  await page().waitForTimeout(500);
}

const page = () => T.page;

/** Drags the sash between the Runs and Alignment panes up so that Runs is only `rows` rows tall. */
async function shrinkRunsPane(rows) {
  const sash = page().locator('.part.sidebar .monaco-sash.horizontal').first();
  const runsHeader = await page().locator('.part.sidebar .pane-header', { hasText: 'Runs' }).first().boundingBox();
  const sb = await sash.boundingBox().catch(() => null);
  if (!sb || !runsHeader) return;
  await page().mouse.move(sb.x + sb.width / 2, sb.y + sb.height / 2);
  await page().mouse.down();
  await page().mouse.move(sb.x + sb.width / 2, runsHeader.y + runsHeader.height + rows * 22 + 6, { steps: 5 });
  await page().mouse.up();
}

async function toast(text, timeout = 60000) {
  const t = T.page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await t.waitFor({ timeout });
  return t;
}

try {
  checkTools();
  const ws = makeWorkspace(root);
  T.ws = ws;
  // torchvision's VisionTransformer, trained on Fashion-MNIST (test/fixtures/torch/README.md): input pixel_values
  // [batch,1,28,28] with the examples' preprocessing ((x/255 − 0.286)/0.353), so examples/calib200.npz and the
  // data/*.json specs fit as they are (a single-input model takes the array `x`).
  fs.mkdirSync(path.join(ws, 'torchvision'));
  for (const seed of [1, 2])
    fs.writeFileSync(
      path.join(ws, 'torchvision', `tv_s${seed}.onnx`),
      zlib.gunzipSync(fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'torch', 'trained', `tv_s${seed}_op17.onnx.gz`))),
    );
  const vsix = process.env.OTFUSE_UI_VSIX;
  server = await startCodeServer(root, ws, { install: vsix ? path.resolve(vsix) : undefined, settings: { 'workbench.colorTheme': 'Default Dark Modern' } });
  if (vsix) log(`testing the installed ${path.basename(vsix)}`);
  log(`code-server on :${server.port} (scratch ${root})`);
  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const page = await ctx.newPage();
  T.page = page;
  const offOrigin = new Set();
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (/^https?:$/.test(u.protocol) && !['127.0.0.1', 'localhost'].includes(u.hostname) && !u.hostname.endsWith('vscode-cdn.net')) offOrigin.add(u.origin);
  });
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  await page.goto(server.url(vsix ? [] : [['extensionDevelopmentPath', server.remote(REPO)]]));

  let rowA, rowB;
  await check('workbench and explorer ready', async () => {
    await page.locator('.monaco-workbench').waitFor({ timeout: 120000 });
    const folder = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'examples' }).first();
    await folder.waitFor({ timeout: 120000 });
    rowA = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="vit48_s10.onnx"]');
    rowB = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="vit48_s11.onnx"]');
    if (!(await rowA.count())) await folder.click();
    await rowA.waitFor({ timeout: 30000 });
    await rowB.waitFor({ timeout: 30000 });
  });

  await check('[12] one model selected → Fuse Models explains that fusion needs a second model', async () => {
    await explorerMenu([rowA], 'Fuse Models');
    const title = await quick().locator('.quick-input-title').textContent({ timeout: 30000 });
    if (!/needs at least one partner/.test(title)) throw new Error(`title: ${title}`);
    await page.screenshot({ path: path.join(T.shots, '01-single-model.png') });
    await page.keyboard.press('Escape');
  });

  await check('[2] two models → right-click → Fuse Models; the data picker ranks by the model inputs with N and shapes', async () => {
    await explorerMenu([rowA, rowB], 'Fuse Models', '02-context-menu.png');
    await pickQuick('anchor', 'vit48_s10', 'vit48_s10.onnx');
    await pickQuick('preset', 'Recommended', 'Recommended');
    const rows = await quickRows('calibration data');
    log(`data picker: ${rows.map((r) => `${r.separator ? `[${r.separator}] ` : ''}${r.label}`).join(' | ')}`);
    const firstBert = rows.findIndex((r) => /bert\//.test(r.text));
    const sep = rows.findIndex((r) => /Do not fit/.test(r.separator));
    if (/bert/.test(rows[0].text)) throw new Error('a BERT token set is offered first for a ViT');
    if (sep < 0 || firstBert < sep) throw new Error(`BERT files not below "Do not fit" (separator ${sep}, first bert ${firstBert})`);
    const calib = rows.find((r) => r.label === 'calib200.npz');
    if (!calib || !/N 200 · x \[1, 28, 28\]/.test(calib.text)) throw new Error(`calib200 row: ${calib?.text}`);
    if (!/does not fit vit48_s10\.onnx: no array 'pixel_values'/.test(rows[firstBert].text)) throw new Error(`bert row: ${rows[firstBert].text}`);
    await page.screenshot({ path: path.join(T.shots, '03-data-picker.png') });
    await pickQuickExact('calibration data', 'calib200', 'calib200.npz');
  });

  await check('[1] evaluation data is asked for separately: the held-out set first, calibration data only as a labelled choice', async () => {
    const rows = await quickRows('evaluation data');
    if (rows[0].label !== 'fmnist-test-2k.json') throw new Error(`first evaluation candidate: ${rows[0].label}`);
    if (rows.some((r) => r.label === 'calib200.npz')) throw new Error('the calibration file is offered as evaluation data');
    const calibChoice = rows.find((r) => /Use the calibration data/.test(r.label));
    if (!calibChoice || !/measured on calibration data/.test(calibChoice.text)) throw new Error('no labelled "Use the calibration data" choice');
    await page.screenshot({ path: path.join(T.shots, '04-eval-picker.png') });
    await pickQuickExact('evaluation data', 'fmnist-test', 'fmnist-test-2k.json');
  });

  const runsRoot = path.join(ws, '.otfuse', 'runs');
  let record, runDir, frame;
  await check('the run completes; run.json records calibration and evaluation data apart', async () => {
    ({ runDir, record } = await waitForRun(runsRoot, new Set()));
    if (path.basename(record.evalData) !== 'fmnist-test-2k.json' || path.basename(record.data) !== 'calib200.npz' || record.evalIsCalibration)
      throw new Error(`data ${record.data} eval ${record.evalData}`);
  });

  await check('[5] Alignment view: a non-blank heatmap per layer, colour bar and scale, the most informative layer selected', async () => {
    frame = await webviewFrame('alignment');
    await checkHeatmaps(frame, runDir, record);
    const best = record.layers.reduce((a, b) => (informativeness(b) > informativeness(a) ? b : a), record.layers[0]);
    const selected = await frame.evaluate(() => document.querySelector('.thumb-card[aria-selected="true"]')?.dataset.tensor);
    if (selected !== best.tensor) throw new Error(`selected ${selected}, most informative ${best.tensor}`);
    const scale = await frame.locator('#scale').textContent();
    if (!/from .* to .*rows sum to 1/.test(scale)) throw new Error(`scale: ${scale}`);
    log(`default layer ${best.name} (row confidence ${best.diagnostics.meanBestMatch.toFixed(3)}); ${scale}`);
  });

  await check('[1] the accuracy table = run.json, and says it was measured on the held-out set', async () => {
    await checkAccuracyTable(frame, record);
    const caption = await frame.locator('#accuracy-caption').textContent();
    if (!/Measured on fmnist-test-2k\.json/.test(caption)) throw new Error(`caption: ${caption}`);
  });

  await check('[6][7] overview chart across depth; diagnostics with human labels and units', async () => {
    await frame.waitForSelector('#overview[data-drawn="1"] canvas', { timeout: 10000 });
    if ((await canvasColours(frame, '#overview canvas')) < 3) throw new Error('overview chart blank');
    const labels = await frame.evaluate(() => [...document.querySelectorAll('#diagnostics th')].map((th) => th.textContent));
    if (!labels.some((l) => /Row confidence/.test(l)) || labels.some((l) => /^(meanBestMatch|ms|hardness)\b/.test(l)))
      throw new Error(`diagnostics: ${labels}`);
    const caption = await frame.locator('#diagnostics caption').textContent();
    if (!/^Diagnostics of /.test(caption)) throw new Error(`caption '${caption}'`);
  });

  await check('[5] hover read-out above the map; keyboard selects the next layer and keeps it in view', async () => {
    const canvas = frame.locator('#heatmap');
    const box = await canvas.boundingBox();
    await canvas.hover({ position: { x: box.width * 0.3, y: box.height * 0.6 } });
    await frame.waitForFunction(() => /^i \d+(–\d+)?, j \d+(–\d+)?: /.test(document.getElementById('hover').textContent), null, { timeout: 5000 });
    const card = frame.locator('.thumb-card[aria-selected="true"]');
    const before = await card.getAttribute('data-tensor');
    const idx = record.layers.findIndex((l) => l.tensor === before);
    const next = record.layers[idx + 1 < record.layers.length ? idx + 1 : idx - 1];
    await card.focus();
    await card.press(idx + 1 < record.layers.length ? 'ArrowRight' : 'ArrowLeft');
    await frame.waitForFunction((t) => document.querySelector('.thumb-card[aria-selected="true"]')?.dataset.tensor === t, next.tensor, { timeout: 5000 });
    const inView = await frame.evaluate(() => {
      const r = document.querySelector('.thumb-card[aria-selected="true"]').getBoundingClientRect();
      return r.top >= 0 && r.bottom <= window.innerHeight;
    });
    if (!inView) throw new Error('the selected layer is not scrolled into view');
    await frame.waitForFunction((t) => document.getElementById('detail-name').textContent.startsWith(t), next.name, { timeout: 5000 });
  });

  await check('[5] "Open large" shows the map in an editor tab with zoom', async () => {
    await frame.locator('#btn-open-large').click();
    const large = await webviewFrame('large', 30000, '#large-map[data-drawn="1"]');
    if ((await canvasColours(large, '#large-map')) < 2) throw new Error('large map blank');
    await large.locator('#zoom').fill('1536');
    await large.waitForFunction(() => parseFloat(document.getElementById('large-map').style.width) === 1536, null, { timeout: 5000 });
    await page.screenshot({ path: path.join(T.shots, '05-open-large.png') });
    await palette('View: Close Editor');
  });

  await check('[10] exports: heatmap PNG, map CSV and NPY, accuracy CSV and Markdown (through the Save dialog)', async () => {
    const tensor = await frame.evaluate(() => document.querySelector('.thumb-card[aria-selected="true"]').dataset.tensor);
    const layer = record.layers.find((l) => l.tensor === tensor);
    await frame.locator('#btn-export-png').click();
    const png = await acceptSave(fileSafe(`${record.name}-${layer.name}.png`));
    const head = fs.readFileSync(png).subarray(0, 8).toString('hex');
    if (head !== '89504e470d0a1a0a') throw new Error(`${png} is not a PNG`);
    await frame.locator('#btn-export-csv').click();
    const csv = fs
      .readFileSync(await acceptSave(`${fileSafe(record.name)}-${fileSafe(tensor)}.csv`), 'utf8')
      .trim()
      .split('\n');
    if (csv.length !== layer.rows || csv[0].split(',').length !== layer.cols)
      throw new Error(`CSV ${csv.length}×${csv[0].split(',').length} for ${layer.rows}×${layer.cols}`);
    const rowSum = csv[0].split(',').reduce((s, v) => s + Number(v), 0);
    if (Math.abs(rowSum - 1) > 1e-3) throw new Error(`CSV row 0 sums to ${rowSum}`);
    await frame.locator('#btn-export-npy').click();
    const npy = fs.readFileSync(await acceptSave(`${fileSafe(record.name)}-${fileSafe(tensor)}.npy`));
    if (npy.subarray(1, 6).toString() !== 'NUMPY' || !npy.toString('latin1', 0, 128).includes(`(${layer.rows}, ${layer.cols})`))
      throw new Error('bad NPY header');
    await frame.locator('#btn-export-acc-csv').click();
    const acc = fs
      .readFileSync(await acceptSave(`${fileSafe(record.name)}-accuracy.csv`), 'utf8')
      .trim()
      .split('\n');
    if (acc.length !== record.metrics.length + 1) throw new Error(`accuracy CSV has ${acc.length} lines`);
    // Each row carries its role and the data it was measured on (issue 27 item 3).
    if (!acc[0].startsWith('model,role,accuracy_percent,loss,data,data_n,data_kind')) throw new Error(`accuracy CSV header ${acc[0]}`);
    const ot = acc.find((l) => l.startsWith('ot,'))?.split(',');
    if (!ot || ot[1] !== 'fused' || ot[2] !== (100 * record.metrics.find((m) => m.label === 'ot').accuracy).toFixed(2) || ot[4] !== 'fmnist-test-2k.json')
      throw new Error(`ot row ${ot}`);
    await frame.locator('#btn-export-acc-md').click();
    const md = fs.readFileSync(await acceptSave(`${fileSafe(record.name)}-accuracy.md`), 'utf8');
    if (!/\| ot \| fused \| \d+\.\d\d % \|/.test(md) || !/measured on fmnist-test-2k\.json/.test(md)) throw new Error(`markdown:\n${md}`);
    log(`exported ${path.basename(png)}, CSV ${layer.rows}×${layer.cols}, NPY, accuracy CSV + Markdown`);
  });

  await check('[3][12] Finetune: button disabled while the job runs, live progress, ot+finetune with the anchor+finetune baseline, loss curve', async () => {
    await frame.evaluate(() => window.scrollTo(0, 0));
    await frame.locator('#btn-finetune').click();
    await pickQuick('training data', 'fmnist-train', 'fmnist-train-5k.json');
    await frame.waitForSelector('#btn-finetune[disabled]', { timeout: 30000 });
    await frame.waitForSelector('#live', { timeout: 30000 });
    await page.screenshot({ path: path.join(T.shots, '06-finetune-running.png') });
    const end = Date.now() + 240000;
    for (;;) {
      try {
        record = readRecord(runDir);
      } catch {}
      if (record.finetune && record.metrics.some((m) => m.label === 'anchor+finetune')) break;
      if (Date.now() > end) throw new Error('no finetune result in run.json');
      await page.waitForTimeout(500);
    }
    await frame.waitForFunction((n) => document.querySelectorAll('#accuracy tbody tr').length === n, record.metrics.length, { timeout: 30000 });
    await checkAccuracyTable(frame, record);
    await frame.waitForSelector('#btn-finetune:not([disabled])', { timeout: 30000 });
    await frame.waitForSelector('#loss-curve[data-drawn="1"] canvas', { timeout: 10000 });
    // The panel may redraw the chart (a new canvas) while it is read: look again for up to 10 s before calling it blank.
    let colours = 0;
    for (const until = Date.now() + 10000; colours < 3 && Date.now() < until;) {
      colours = await canvasColours(frame, '#loss-curve[data-drawn="1"] canvas').catch(() => 0);
      if (colours < 3) await frame.waitForTimeout(250);
    }
    if (colours < 3) throw new Error('loss curve blank');
    const stages = await frame.evaluate(() => document.body.dataset.liveStages ?? '');
    if (!/\bfinetune\b/.test(stages)) throw new Error(`the webview saw no live finetune progress (stages: '${stages}')`);
    await toast('ot+finetune');
    await frame.locator('#btn-export-loss').click();
    const png = await acceptSave(fileSafe(`${record.name}-loss.png`));
    if (fs.readFileSync(png).subarray(1, 4).toString() !== 'PNG') throw new Error('loss PNG');
  });

  await check('[11] lineage: fused.onnx says what it is made of, and the model view shows it', async () => {
    await openFile(path.join(runDir, 'fused.onnx'));
    const model = await modelFrame('fused.onnx');
    await model.waitForSelector('#model-lineage', { timeout: 30000 });
    const text = await model.locator('#model-lineage').textContent();
    for (const want of [
      'otfuse 0.1.0',
      'vit48_s10.onnx',
      sha256(path.join(ws, 'examples', 'vit48_s10.onnx')).slice(0, 16),
      'Accuracy when written',
      'fmnist-test-2k.json',
    ]) {
      if (!text.includes(want)) throw new Error(`lineage lacks '${want}': ${text}`);
    }
    await page.screenshot({ path: path.join(T.shots, '07-lineage.png') });
  });

  await check(
    '[4] execution provider cuda on a machine without it: the model view still works; the error offers Open Settings/Retry; Retry works after the fix',
    async () => {
      await setProvider('cuda');
      await openFile(path.join(ws, 'examples', 'vit48_s11.onnx'));
      const model = await modelFrame('vit48_s11.onnx');
      await model.waitForSelector('#model-summary', { timeout: 30000 });
      if (await model.locator('.error').count()) throw new Error('the model view shows an error');
      await model.locator('#btn-evaluate').click();
      await pickQuick('Evaluate vit48_s11.onnx', 'calib200', 'calib200.npz');
      const t = await toast("'cuda' cannot run here");
      const text = await t.textContent();
      if (/--provider/.test(text)) throw new Error(`CLI advice in the editor: ${text}`);
      for (const b of ['Open Settings', 'Retry'])
        if (!(await t.locator('.monaco-button', { hasText: b }).count())) throw new Error(`no '${b}' button: ${text}`);
      await page.screenshot({ path: path.join(T.shots, '08-provider-error.png') });
      // The failed job is one dismissible line in the Alignment view, not a block.
      await focusAlignment();
      await frame.waitForSelector('#live.live-failed #btn-dismiss', { timeout: 10000 });
      const liveHeight = await frame.evaluate(() => document.getElementById('live').getBoundingClientRect().height);
      if (liveHeight > 160) throw new Error(`failed job block is ${liveHeight}px tall`);
      const tag = await frame.locator('#live-state').textContent();
      if (tag !== 'FAILED') throw new Error(`status tag '${tag}'`);
      await frame.locator('#btn-dismiss').click();
      await frame.waitForSelector('#live', { state: 'detached', timeout: 5000 });
      // Open Settings from the notification, choose 'auto' there, then Retry.
      await t.locator('.monaco-button', { hasText: 'Open Settings' }).click();
      await chooseInSettings('auto');
      const retryToast = await toast('then retry', 15000);
      await retryToast.locator('.monaco-button', { hasText: 'Retry' }).click();
      const done = await toast('vit48_s11.onnx: accuracy', 60000);
      const text2 = await done.textContent();
      if (!/on 200 samples of calib200\.npz \(cpu/.test(text2)) throw new Error(`after Retry: ${text2}`);
      log(`after Retry with 'auto': ${text2.slice(0, 120)}`);
      await palette('View: Close All Editors');
    },
  );

  let emdDir;
  await check('[9] Re-run with edits: the recipe form writes a *.otfuse.json and fuses the same models with it', async () => {
    await focusAlignment();
    await frame.evaluate(() => window.scrollTo(0, 0));
    await frame.locator('#btn-rerun').click();
    const form = await webviewFrame('recipe', 30000, '#recipe-form');
    const fields = await form.evaluate(() => [...document.querySelectorAll('#recipe-form [name]')].map((e) => e.getAttribute('name')));
    for (const f of ['solver', 'reg', 'residualPolicy', 'qk', 'weights']) if (!fields.includes(f)) throw new Error(`form lacks ${f}: ${fields}`);
    // The auto-tuned first run may have chosen either solver (the exact preset is EMD): the re-run takes the other.
    const firstSolver = record.recipe.solver ?? (record.recipe.preset === 'exact' ? 'emd' : 'sinkhorn');
    const target = firstSolver === 'emd' ? 'sinkhorn' : 'emd';
    await form.selectOption('#f-solver', target);
    await form.fill('#f-name', `vit-${target}`);
    await page.screenshot({ path: path.join(T.shots, '09-recipe-form.png') });
    await form.locator('#btn-save-recipe').click();
    const file = await acceptSave(`vit-${target}.otfuse.json`);
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (saved.solver !== target || saved.name !== `vit-${target}`) throw new Error(`recipe file ${JSON.stringify(saved)}`);
    const emd = await waitForRun(runsRoot, new Set([path.basename(runDir)]));
    emdDir = emd.runDir;
    if (emd.record.recipe.solver !== target || path.basename(emd.record.evalData) !== 'fmnist-test-2k.json')
      throw new Error(`re-run recipe ${JSON.stringify(emd.record.recipe)}, eval ${emd.record.evalData}`);
    await palette('View: Close Editor');
  });

  await check('[9] Compare: recipes diffed, accuracy merged, the same layer side by side', async () => {
    await focusAlignment();
    await frame.waitForFunction((d) => document.body.dataset.run === d, emdDir, { timeout: 30000 });
    await frame.locator('#btn-compare').click();
    await pickQuick('Compare', record.name, record.name);
    const cmp = await webviewFrame('compare', 30000, '#compare-recipe');
    await cmp.waitForSelector('#compare-recipe tr.diff[data-key="solver"]', { timeout: 10000 });
    const same = await cmp.locator('#compare-recipe tr[data-key="reg"]').getAttribute('class');
    if (same === 'diff') throw new Error('reg is marked as different');
    const acc = await cmp.evaluate(() => [...document.querySelectorAll('#compare-acc tbody tr[data-label="ot"] td')].map((td) => td.dataset.accuracy));
    const emdRecord = readRecord(emdDir);
    const expected = [emdRecord, record].map((r) => String(r.metrics.find((m) => m.label === 'ot').accuracy));
    if (JSON.stringify(acc) !== JSON.stringify(expected)) throw new Error(`compare ot ${acc} vs ${expected}`);
    await cmp.waitForFunction(() => document.querySelectorAll('canvas.compare-map[data-drawn="1"]').length === 2, null, { timeout: 15000 });
    await screenshot(null, '10-compare.png', 'screenshot-compare.png');
    await palette('View: Close Editor');
  });

  await check('[8] the side panel at 230 px in light, dark and high-contrast themes: no horizontal overflow, readable status', async () => {
    await focusAlignment();
    await palette('otfuse: Open Run');
    await pickQuick('Open Run', record.name, record.name);
    await frame.waitForFunction((d) => document.body.dataset.run === d, runDir, { timeout: 30000 });
    const w = await sideBarWidth(230);
    log(`side bar width ${w}px`);
    for (const [theme, cls, shot] of [
      ['Light Modern', 'vscode-light', 'light'],
      ['Dark Modern', 'vscode-dark', 'dark'],
      ['Dark High Contrast', 'vscode-high-contrast', 'high-contrast'],
    ]) {
      await setTheme(theme);
      await frame.waitForFunction((c) => document.body.classList.contains(c), cls, { timeout: 15000 });
      await page.waitForTimeout(800);
      const m = await frame.evaluate(() => {
        const lum = (c) => {
          const v = c
            .match(/[\d.]+/g)
            .slice(0, 3)
            .map(Number)
            .map((x) => {
              x /= 255;
              return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
            });
          return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
        };
        const bg =
          getComputedStyle(document.documentElement).getPropertyValue('--vscode-sideBar-background').trim() || getComputedStyle(document.body).backgroundColor;
        const hex = (h) => (h.startsWith('#') ? `rgb(${parseInt(h.slice(1, 3), 16)},${parseInt(h.slice(3, 5), 16)},${parseInt(h.slice(5, 7), 16)})` : h);
        const fg = getComputedStyle(document.getElementById('run-status')).color;
        const [a, b] = [lum(fg), lum(hex(bg))].sort((x, y) => y - x);
        return { overflow: document.documentElement.scrollWidth - window.innerWidth, width: window.innerWidth, contrast: (a + 0.05) / (b + 0.05) };
      });
      if (m.overflow > 1) throw new Error(`${theme}: ${m.overflow}px horizontal overflow at ${m.width}px`);
      if (m.contrast < 3) throw new Error(`${theme}: status tag contrast ${m.contrast.toFixed(2)}`);
      const sb = await page.locator('.part.sidebar').boundingBox();
      await palette('Notifications: Clear All Notifications');
      await page.waitForTimeout(600);
      await page.screenshot({
        path: path.join(T.shots, `11-narrow-${shot}.png`),
        clip: { x: sb.x, y: sb.y, width: sb.width, height: Math.min(sb.height, 980) },
      });
      if (process.env.OTFUSE_UPDATE_SCREENSHOTS === '1')
        fs.copyFileSync(path.join(T.shots, `11-narrow-${shot}.png`), path.join(REPO, 'media', `screenshot-narrow-${shot}.png`));
      log(`${theme}: webview ${m.width}px, status contrast ${m.contrast.toFixed(1)}:1`);
    }
    await setTheme('Dark Modern');
    await sideBarWidth(560);
  });

  await check('README screenshot of the ViT run', async () => {
    await frame.waitForFunction(() => document.body.classList.contains('vscode-dark'), null, { timeout: 15000 });
    // A tall window so that the picture holds the whole view: accuracy, overview, the selected map, the layers.
    await page.setViewportSize({ width: 1600, height: 1900 });
    await shrinkRunsPane(3);
    await page.waitForTimeout(800);
    await screenshot(frame, '12-alignment.png', 'screenshot-alignment.png');
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

  // ---------- BERT-style text encoders (input_ids, attention_mask, token_type_ids) on token data
  const vitRuns = () => new Set(fs.readdirSync(runsRoot));
  let bertRowA, bertRowB, bertRecord, bertDir, bertFrame;
  let tvRowA, tvRowB, tvRecord, tvDir;
  await check('BERT: select bertD_s20 + bertD_s21 → Fuse Models; token sets ranked first for a BERT, held-out test.npz for evaluation', async () => {
    if (!fs.existsSync(path.join(ws, 'bert'))) bertFixtures(); // throws: where the fixtures were looked for
    await palette('View: Show Explorer');
    const folder = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="bert"]').first();
    await folder.waitFor({ timeout: 30000 });
    bertRowA = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="bertD_s20.onnx"]');
    bertRowB = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="bertD_s21.onnx"]');
    // Expand bert/ (a click toggles it: try until its files show).
    for (let i = 0; i < 6 && !(await bertRowA.isVisible()); i++) {
      await folder.click();
      await bertRowA.waitFor({ timeout: 2000 }).catch(() => {});
    }
    await bertRowA.waitFor({ timeout: 30000 });
    await bertRowB.waitFor({ timeout: 30000 });
    const known = vitRuns();
    await explorerMenu([bertRowA, bertRowB], 'Fuse Models');
    await pickQuick('anchor', 'bertD_s20', 'bertD_s20.onnx');
    await pickQuick('preset', 'Recommended', 'Recommended');
    const rows = await quickRows('calibration data');
    if (!/bert\//.test(rows[0].text)) throw new Error(`first candidate for a BERT: ${rows[0].text}`);
    await pickQuickExact('calibration data', 'calib.npz', 'calib.npz');
    const evalRows = await quickRows('evaluation data');
    if (evalRows[0].label !== 'test.npz') throw new Error(`first evaluation candidate: ${evalRows[0].label}`);
    await pickQuickExact('evaluation data', 'test.npz', 'test.npz');
    ({ runDir: bertDir, record: bertRecord } = await waitForRun(runsRoot, known));
    const names = bertRecord.layers.map((l) => l.name);
    for (const n of ['embed.tokens', qMap(names), 'blocks.1.mlp.fc1', 'head.pooler'])
      if (!names.includes(n)) throw new Error(`no ${n} map in ${names.join(', ')}`);
    const acc = (label) => bertRecord.metrics.find((m) => m.label === label)?.accuracy;
    if (!(acc('ot') > acc('vanilla') + 0.1)) throw new Error(`ot ${acc('ot')} vs vanilla ${acc('vanilla')}`);
  });

  await check('BERT: heatmaps, accuracy table = run.json, the model view shows three int64 inputs', async () => {
    bertFrame = await webviewFrame('alignment');
    const n = await checkHeatmaps(bertFrame, bertDir, bertRecord);
    await checkAccuracyTable(bertFrame, bertRecord);
    const header = await bertFrame.locator('#run-data').textContent();
    if (!/calibration data calib\.npz · evaluated on test\.npz/.test(header)) throw new Error(`run header data line: ${header}`);
    log(`BERT: ${n} heatmaps; ${header}`);
    await palette('View: Show Explorer');
    await bertRowA.click();
    const model = await modelFrame('bertD_s20.onnx');
    await model.waitForSelector('#model-io', { timeout: 30000 });
    const inputs = await model.evaluate(() =>
      [...document.querySelectorAll('#model-io tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)).filter((r) => r[0] === 'input'),
    );
    if (
      JSON.stringify(inputs.map((r) => r[1])) !== JSON.stringify(['input_ids', 'attention_mask', 'token_type_ids']) ||
      !inputs.every((r) => /int64/i.test(r[2]))
    )
      throw new Error(`inputs: ${JSON.stringify(inputs)}`);
  });

  await check('BERT: README screenshot of the Alignment view', async () => {
    await focusAlignment();
    await page.setViewportSize({ width: 1600, height: 1900 });
    await shrinkRunsPane(4);
    await screenshot(bertFrame, '13-bert-alignment.png', 'screenshot-bert.png');
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

  await check('[1] a run evaluated on its calibration data says so in the table', async () => {
    const known = vitRuns();
    await palette('View: Show Explorer');
    await explorerMenu([bertRowA, bertRowB], 'Fuse Models');
    await pickQuick('anchor', 'bertD_s20', 'bertD_s20.onnx');
    await pickQuick('preset', 'Recommended', 'Recommended');
    await pickQuickExact('calibration data', 'calib.npz', 'calib.npz');
    await pickQuick('evaluation data', 'Use the calibration', 'Use the calibration data');
    const { runDir: dir, record: r } = await waitForRun(runsRoot, known);
    if (r.evalIsCalibration !== true) throw new Error('run.json does not flag calibration-data evaluation');
    await focusAlignment();
    await bertFrame.waitForFunction((d) => document.body.dataset.run === d, dir, { timeout: 30000 });
    const caption = bertFrame.locator('#accuracy-caption.warning');
    const text = await caption.textContent({ timeout: 10000 });
    if (!/calibration data \(calib\.npz\) — not a held-out result/.test(text)) throw new Error(`caption: ${text}`);
    await screenshot(bertFrame, '14-calibration-labelled.png');
  });

  // ---------- torchvision's VisionTransformer (issue 13): the trained pair from test/fixtures/torch/trained
  await check(
    '[13] torchvision ViT pair: select tv_s1 + tv_s2 → Fuse Models; calib200.npz fits (single input pixel_values ← x), held-out set for evaluation',
    async () => {
      await palette('View: Show Explorer');
      // Collapse the expanded folders so that torchvision/ is in the (virtualised) list.
      for (const name of ['bert', 'examples']) {
        const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${name}"][aria-expanded="true"]`).first();
        if (await row.count()) await row.click();
      }
      const folder = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="torchvision"]').first();
      await folder.waitFor({ timeout: 30000 });
      tvRowA = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="tv_s1.onnx"]');
      tvRowB = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="tv_s2.onnx"]');
      for (let i = 0; i < 6 && !(await tvRowA.isVisible()); i++) {
        await folder.click();
        await tvRowA.waitFor({ timeout: 2000 }).catch(() => {});
      }
      await tvRowA.waitFor({ timeout: 30000 });
      await tvRowB.waitFor({ timeout: 30000 });
      const known = vitRuns();
      await explorerMenu([tvRowA, tvRowB], 'Fuse Models');
      await pickQuick('anchor', 'tv_s1', 'tv_s1.onnx');
      await pickQuick('preset', 'Recommended', 'Recommended');
      const rows = await quickRows('calibration data');
      const sep = rows.findIndex((r) => /Do not fit/.test(r.separator));
      const calib = rows.findIndex((r) => r.label === 'calib200.npz');
      if (calib < 0 || (sep >= 0 && calib >= sep) || !/N 200 · x \[1, 28, 28\]/.test(rows[calib].text))
        throw new Error(`calib200.npz does not fit tv_s1.onnx: ${rows[calib]?.text}`);
      await pickQuickExact('calibration data', 'calib200', 'calib200.npz');
      const evalRows = await quickRows('evaluation data');
      if (evalRows[0].label !== 'fmnist-test-2k.json') throw new Error(`first evaluation candidate: ${evalRows[0].label}`);
      await pickQuickExact('evaluation data', 'fmnist-test', 'fmnist-test-2k.json');
      ({ runDir: tvDir, record: tvRecord } = await waitForRun(runsRoot, known));
      if (path.basename(tvRecord.anchor) !== 'tv_s1.onnx' || path.basename(tvRecord.evalData) !== 'fmnist-test-2k.json')
        throw new Error(`anchor ${tvRecord.anchor}, eval ${tvRecord.evalData}`);
    },
  );

  await check(
    '[13] torchvision ViT pair: OT ≥ vanilla + 10 pt and within 15 pt of the anchor; both encoder layers aligned; one heatmap per layer; accuracy table = run.json',
    async () => {
      const acc = (label) => tvRecord.metrics.find((m) => m.label === label)?.accuracy;
      const anchorAcc = tvRecord.metrics.find((m) => /tv_s1\.onnx/.test(m.label))?.accuracy;
      if (!(acc('ot') >= acc('vanilla') + 0.1)) throw new Error(`ot ${acc('ot')} vs vanilla ${acc('vanilla')}`);
      if (!(anchorAcc > 0.8 && acc('ot') >= anchorAcc - 0.15)) throw new Error(`ot ${acc('ot')} vs anchor ${anchorAcc}`);
      const names = tvRecord.layers.map((l) => l.name);
      for (const n of ['embed.patch', qMap(names), 'blocks.0.mlp.fc1', 'blocks.1.attn.o', 'blocks.1.mlp.fc2'])
        if (!names.includes(n)) throw new Error(`no ${n} map in ${names.join(', ')}`);
      await focusAlignment();
      const tvFrame = await webviewFrame('alignment');
      const n = await checkHeatmaps(tvFrame, tvDir, tvRecord);
      await checkAccuracyTable(tvFrame, tvRecord);
      log(`torchvision ViT: ${n} heatmaps; anchor ${anchorAcc}, vanilla ${acc('vanilla')}, ot ${acc('ot')}`);
      await screenshot(tvFrame, '15-torchvision-alignment.png');
    },
  );

  await check('no request left the machine; strict CSP holds', async () => {
    if (offOrigin.size) throw new Error(`off-origin requests: ${[...offOrigin].join(', ')}`);
    // VS Code's webview host serialises its own default <style> and an inline style on <html> into every
    // webview document; under a strict CSP those two are refused (and re-applied through the CSSOM). Any other
    // violation (script, image, font, connect) or a style attribute in our own markup fails the test.
    const csp = consoleLines.filter((l) => /Content Security Policy/.test(l) && !/Applying inline style/.test(l));
    if (csp.length) throw new Error(`CSP violations:\n${csp.slice(0, 5).join('\n')}`);
    for (const view of ['alignment', 'model']) {
      const f = await webviewFrame(view, 5000).catch(() => null);
      if (!f) continue;
      // Canvas sizes, bar widths and uPlot's layout are set through the CSSOM (allowed by the CSP).
      const styled = await f.evaluate(() =>
        [...document.body.querySelectorAll('[style]')].filter((e) => !e.matches('canvas, .bar, .uplot, .uplot *')).map((e) => e.outerHTML.slice(0, 80)),
      );
      if (styled.length) throw new Error(`style attributes in the ${view} webview: ${styled.join(', ')}`);
    }
  });
} catch (err) {
  harnessError = err ?? new Error('harness error');
} finally {
  await endScenario(T, root, { browser, server, err: harnessError });
}
