// UI test in a real editor: code-server + headless chromium. Selects both example models in the Explorer
// (click + ctrl-click), right-click → Fuse Models, answers the prompts, waits for the run, then checks the
// Alignment webview: one non-blank heatmap per aligned layer, an accuracy table equal to run.json, hover read-out.
// Then a second scenario with BERT-style text encoders (three int64 inputs, a token .npz as data): right-click
// fuse → non-blank heatmap per aligned layer group, accuracy table = run.json, the model view's three inputs.
// Screenshots go to the scratch folder (printed at the end); OTFUSE_UPDATE_SCREENSHOTS=1 also refreshes
// media/screenshot-alignment.png and media/screenshot-bert.png for the README.
// Final line: `N passed, N failed`.
// OTFUSE_UI_VSIX=<file.vsix>: run the same scenario against the packaged extension installed with
// --install-extension instead of the repository loaded as a development extension.
import fs from 'node:fs';
import path from 'node:path';
import { bertFixtures, checkTools, finish, tidy, launchBrowser, log, makeWorkspace, REPO, scratchRoot, startCodeServer } from './lib.mjs';

const root = scratchRoot('ui');
const shots = path.join(root, 'shots');
fs.mkdirSync(shots, { recursive: true });
const results = [];
let server, browser, page;

async function check(name, fn) {
  const t = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`✔ ${name} (${Date.now() - t} ms)`);
  } catch (err) {
    results.push({ name, ok: false, error: String(err?.stack ?? err) });
    log(`✘ ${name}: ${err?.message ?? err}`);
    try { await page?.screenshot({ path: path.join(shots, `failed-${results.length}.png`) }); } catch {}
    throw err;
  }
}

/** The inner frame of the webview whose body has data-view=<view>. */
async function webviewFrame(view, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    for (const f of page.frames()) {
      try { if (await f.evaluate((v) => document.body?.dataset.view === v, view)) return f; } catch {}
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no ${view} webview`);
}

async function pickQuick(titlePart, filter, rowText) {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.quick-input-title', { hasText: titlePart }).waitFor({ timeout: 30000 });
  await widget.locator('.quick-input-box input').fill(filter);
  await widget.locator('.monaco-list-row', { hasText: rowText }).first().waitFor({ timeout: 10000 });
  await page.keyboard.press('Enter');
  await widget.locator('.quick-input-title', { hasText: titlePart }).waitFor({ state: 'hidden', timeout: 10000 });
}

/** Like pickQuick, but clicks the row whose label is exactly `label` (a filter may also match similar names). */
async function pickQuickExact(titlePart, filter, label) {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.quick-input-title', { hasText: titlePart }).waitFor({ timeout: 30000 });
  await widget.locator('.quick-input-box input').fill(filter);
  const exact = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  const row = widget.locator('.monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exact }) }).first();
  await row.waitFor({ timeout: 10000 });
  await row.click();
  await widget.locator('.quick-input-title', { hasText: titlePart }).waitFor({ state: 'hidden', timeout: 10000 });
}

/** Runs a palette command by its title. */
async function palette(title) {
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget .quick-input-box input').fill(`>${title}`);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 5000 });
  await page.keyboard.press('Enter');
}

/** Selects two explorer rows (click + ctrl-click), right-clicks and chooses Fuse Models (retrying while the
 * extension activates). */
async function fuseFromExplorer(rowA, rowB, shot) {
  // Enabled, too: right after start-up the item can show greyed out (its enablement, isWorkspaceTrusted, is not
  // settled yet), and a click on it does nothing.
  const item = page.locator('.monaco-menu .action-item:not(.disabled) .action-label:not(.disabled)', { hasText: 'Fuse Models' });
  for (let attempt = 0; ; attempt++) {
    await rowA.click();
    await rowB.click({ modifiers: ['Control'] });
    // While the first click's editor opens (and the extension activates) the ctrl-click can get lost: try again.
    const selected = await page.locator('.explorer-folders-view .monaco-list-row.selected').count();
    if (selected === 2) {
      await rowB.click({ button: 'right' });
      try { await item.waitFor({ timeout: 2000 }); break; } catch { await page.keyboard.press('Escape'); }
    }
    if (attempt > 40) throw new Error(selected === 2 ? 'Fuse Models never appeared (enabled) in the explorer context menu' : `${selected} rows selected`);
    await page.waitForTimeout(500); // the extension activates a few seconds after the explorer shows
  }
  if (shot) await page.screenshot({ path: path.join(shots, shot) });
  await item.click();
}

/** Waits for a finished run.json in a run folder not in `known`; returns { runDir, record }. */
async function waitForRun(runsRoot, known, timeoutMs = 300000) {
  const end = Date.now() + timeoutMs;
  let record, runDir;
  while (Date.now() < end) {
    const dirs = fs.existsSync(runsRoot) ? fs.readdirSync(runsRoot).filter((d) => !known.has(d) && fs.existsSync(path.join(runsRoot, d, 'run.json'))) : [];
    if (dirs.length) {
      runDir = path.join(runsRoot, dirs[0]);
      try { record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')); } catch {}
      if (record && record.status !== 'running') break;
    }
    await page.waitForTimeout(500);
  }
  if (!record) throw new Error('no run.json');
  if (record.status !== 'done') throw new Error(`run ${record.status}: ${JSON.stringify(record.error)}`);
  log(`run ${path.basename(runDir)}: ${record.layers.length} layer maps; ${record.metrics.map((m) => `${m.label} ${m.accuracy}`).join(', ')}`);
  return { runDir, record };
}

/** The Alignment view shows `runDir`: one drawn, non-blank thumbnail per layer of run.json, a non-blank detail
 * heatmap with the map's aspect ratio. */
async function checkHeatmaps(frame, runDir, record) {
  await frame.waitForFunction((dir) => document.body.dataset.run === dir, runDir, { timeout: 60000 });
  await frame.waitForFunction((n) => document.querySelectorAll('canvas.thumb[data-drawn="1"]').length === n, record.layers.length, { timeout: 60000 });
  const stats = await frame.evaluate(() => [...document.querySelectorAll('canvas.thumb')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let opaque = 0; const colours = new Set();
    for (let k = 0; k < d.length; k += 4) { if (d[k + 3] > 0) opaque++; colours.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]); }
    return { tensor: c.dataset.tensor, opaque, pixels: d.length / 4, colours: colours.size };
  }));
  const tensors = record.layers.map((l) => l.tensor).sort();
  const shown = stats.map((s) => s.tensor).sort();
  if (JSON.stringify(tensors) !== JSON.stringify(shown)) throw new Error(`heatmaps ${shown} vs run.json layers ${tensors}`);
  const blank = stats.filter((s) => s.opaque < s.pixels * 0.9 || s.colours < 2);
  if (blank.length) throw new Error(`blank heatmaps: ${JSON.stringify(blank)}`);
  const detail = await frame.evaluate(() => { const c = document.getElementById('heatmap'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const s = new Set(); for (let k = 0; k < d.length; k += 4) s.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]); return s.size; });
  if (detail < 2) throw new Error('the selected layer heatmap is blank');
  const geom = await frame.evaluate(() => { const c = document.getElementById('heatmap'); const r = c.getBoundingClientRect(); return { w: r.width, h: r.height, style: c.getAttribute('style'), cw: c.width, ch: c.height }; });
  const selected = await frame.evaluate(() => document.querySelector('.thumb-card[aria-selected="true"]')?.dataset.tensor);
  const sel = record.layers.find((l) => l.tensor === selected) ?? record.layers[0];
  if (Math.abs(geom.w / geom.h - sel.cols / sel.rows) > 0.05 * (sel.cols / sel.rows)) throw new Error(`heatmap aspect ${JSON.stringify(geom)} for a ${sel.rows}×${sel.cols} map`);
  return stats.length;
}

/** The accuracy table shows exactly run.json's metrics (label, percentage, raw value). */
async function checkAccuracyTable(frame, record) {
  const rows = await frame.evaluate(() => [...document.querySelectorAll('#accuracy tbody tr')].map((tr) => ({
    label: tr.dataset.label, text: tr.querySelector('td.acc').textContent, value: tr.querySelector('td.acc').dataset.accuracy,
  })));
  const expected = record.metrics.map((m) => ({ label: m.label, text: m.accuracy === undefined ? '—' : `${(100 * m.accuracy).toFixed(2)}%`, value: m.accuracy === undefined ? '' : String(m.accuracy) }));
  if (JSON.stringify(rows) !== JSON.stringify(expected)) throw new Error(`table ${JSON.stringify(rows)}\nrun.json ${JSON.stringify(expected)}`);
  log(`accuracy table: ${rows.map((r) => `${r.label} ${r.text}`).join(' · ')}`);
}

/** The model editor webview showing `file` (several may be open: they keep their context when hidden). */
async function modelFrame(file, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    for (const f of page.frames()) {
      try { if (await f.evaluate((name) => document.body?.dataset.view === 'model' && document.getElementById('model-name')?.textContent === name, file)) return f; } catch {}
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no model view of ${file}`);
}

/** Shows the otfuse side panel's Alignment view (the Explorer may be in front of it). */
async function vscodeFocusAlignment() {
  await palette('otfuse: Focus on Alignment View');
  await page.waitForTimeout(300);
}

/** Clears notification toasts, scrolls the view to the top and saves a screenshot. The README's copies in media/
 * are refreshed only on request (OTFUSE_UPDATE_SCREENSHOTS=1), so a test run leaves the repository unchanged. */
async function screenshot(frame, name, mediaName) {
  await palette('Notifications: Clear All Notifications');
  await frame.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(800);
  await page.screenshot({ path: path.join(shots, name) });
  if (mediaName && process.env.OTFUSE_UPDATE_SCREENSHOTS === '1') fs.copyFileSync(path.join(shots, name), path.join(REPO, 'media', mediaName));
}

try {
  checkTools();
  const ws = makeWorkspace(root);
  const vsix = process.env.OTFUSE_UI_VSIX;
  server = await startCodeServer(root, ws, { install: vsix ? path.resolve(vsix) : undefined });
  if (vsix) log(`testing the installed ${path.basename(vsix)}`);
  log(`code-server on :${server.port} (scratch ${root})`);
  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  page = await ctx.newPage();
  const offOrigin = new Set();
  page.on('request', (r) => { const u = new URL(r.url()); if (/^https?:$/.test(u.protocol) && !['127.0.0.1', 'localhost'].includes(u.hostname) && !u.hostname.endsWith('vscode-cdn.net')) offOrigin.add(u.origin); });
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

  await check('select both models (click + ctrl-click) → right-click shows Fuse Models', async () => {
    await fuseFromExplorer(rowA, rowB, '01-context-menu.png');
  });

  await check('answer the prompts: anchor, data, preset', async () => {
    await pickQuick('anchor', 'vit48_s10', 'vit48_s10.onnx');
    await pickQuick('data', 'calib200', 'calib200.npz');
    await page.screenshot({ path: path.join(shots, '02-preset.png') });
    await pickQuick('preset', 'Recommended', 'Recommended');
  });

  const runsRoot = path.join(ws, '.otfuse', 'runs');
  let record, runDir;
  await check('the run completes and run.json is written', async () => {
    ({ runDir, record } = await waitForRun(runsRoot, new Set()));
  });

  let frame;
  await check('the Alignment view shows the run with one non-blank heatmap per aligned layer', async () => {
    frame = await webviewFrame('alignment');
    await checkHeatmaps(frame, runDir, record);
  });

  await check('the accuracy table shows the numbers of run.json', async () => {
    await checkAccuracyTable(frame, record);
  });

  await check('hovering the heatmap shows i, j and the value; keyboard selects another layer', async () => {
    const canvas = frame.locator('#heatmap');
    const box = await canvas.boundingBox();
    await canvas.hover({ position: { x: box.width * 0.3, y: box.height * 0.6 } });
    await frame.waitForFunction(() => /^i \d+(–\d+)?, j \d+(–\d+)?: /.test(document.getElementById('hover').textContent), null, { timeout: 5000 });
    log(`hover: ${await frame.locator('#hover').textContent()}`);
    if (record.layers.length > 1) {
      await frame.locator('.thumb-card[aria-selected="true"]').focus();
      await frame.locator('.thumb-card[aria-selected="true"]').press('ArrowRight');
      await frame.waitForFunction((t) => document.querySelector('.thumb-card[aria-selected="true"]')?.dataset.tensor === t, record.layers[1].tensor, { timeout: 5000 });
      await frame.waitForFunction(() => document.getElementById('heatmap')?.dataset.drawn === '1', null, { timeout: 5000 });
    }
  });

  await check('Finetune from the webview button: live progress, ot+finetune row equals run.json, loss curve drawn', async () => {
    await frame.evaluate(() => window.scrollTo(0, 0));
    await frame.locator('#btn-finetune').click();
    await pickQuick('training data', 'fmnist-train', 'fmnist-train-5k.json');
    const end = Date.now() + 180000;
    for (;;) {
      try { record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')); } catch {}
      if (record.finetune) break;
      if (Date.now() > end) throw new Error('no finetune result in run.json');
      await page.waitForTimeout(500);
    }
    const m = record.metrics.find((x) => x.label === 'ot+finetune');
    if (!m) throw new Error('no ot+finetune metric');
    await frame.waitForFunction((v) => document.querySelector('#accuracy tr[data-label="ot+finetune"] td.acc')?.dataset.accuracy === v, String(m.accuracy), { timeout: 30000 });
    const text = await frame.locator('#accuracy tr[data-label="ot+finetune"] td.acc').textContent();
    if (text !== `${(100 * m.accuracy).toFixed(2)}%`) throw new Error(`ot+finetune shows ${text}, run.json ${m.accuracy}`);
    await frame.waitForFunction(() => { const c = document.getElementById('loss-curve'); if (!c || !c.width) return false; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; for (let k = 3; k < d.length; k += 4) if (d[k]) return true; return false; }, null, { timeout: 10000 });
    const stages = await frame.evaluate(() => document.body.dataset.liveStages ?? '');
    if (!/\bfinetune\b/.test(stages)) throw new Error(`the webview saw no live finetune progress (stages: '${stages}')`);
    log(`finetuned: ot+finetune ${text} (${record.finetune.steps} steps); live stages seen by the webview: ${stages}`);
  });

  await check('the .onnx model editor (opened by the click) shows the model, its alignment structure, and evaluates', async () => {
    const model = await webviewFrame('model', 10000);
    await model.waitForSelector('#model-summary', { timeout: 30000 });
    const params = await model.locator('#model-summary td[data-key="Parameters"]').textContent();
    if (!/^\d[\d,]*$/.test(params)) throw new Error(`parameters: ${params}`);
    const text = await model.locator('#alignment-text').textContent();
    if (!/aligned groups/.test(text)) throw new Error(`alignment text: ${text.slice(0, 200)}`);
    log(`model editor: ${params} parameters`);
    // Evaluate from the model view: same accuracy as the anchor's row in run.json (same data).
    await model.locator('#btn-evaluate').click();
    await pickQuick('Evaluate vit48_s10.onnx', 'calib200', 'calib200.npz');
    await model.waitForSelector('#evaluation td[data-key="Accuracy"]', { timeout: 60000 });
    const acc = await model.locator('#evaluation td[data-key="Accuracy"]').textContent();
    const anchor = record.metrics.find((m) => m.file && path.basename(m.file) === 'vit48_s10.onnx');
    if (acc !== `${(100 * anchor.accuracy).toFixed(2)}%`) throw new Error(`model view evaluation ${acc} vs run.json ${anchor.accuracy}`);
    log(`model editor Evaluate: ${acc}`);
  });

  await check('screenshot', async () => {
    // Widen the side bar so the panel reads well in the README screenshot.
    const sash = page.locator('.monaco-sash.vertical').first();
    const sb = await page.locator('.part.sidebar').boundingBox();
    if (sb) { await page.mouse.move(sb.x + sb.width, sb.y + 300); await page.mouse.down(); await page.mouse.move(sb.x + 560, sb.y + 300, { steps: 5 }); await page.mouse.up(); }
    void sash;
    // A layer with visible structure for the picture, and no notification toasts over the editor.
    const pretty = record.layers.find((l) => /attn-k/.test(l.kind)) ?? record.layers[0];
    await frame.locator(`.thumb-card[data-tensor="${pretty.tensor}"]`).click();
    await frame.waitForFunction((t) => document.querySelector('.thumb-card[aria-selected="true"]')?.dataset.tensor === t, pretty.tensor, { timeout: 5000 });
    await screenshot(frame, '03-alignment.png', 'screenshot-alignment.png');
    const geom = await frame.evaluate(() => { const c = document.getElementById('heatmap'); const r = c.getBoundingClientRect(); return { w: r.width, h: r.height, style: c.getAttribute('style'), cw: c.width, ch: c.height, app: document.getElementById('app').clientWidth }; });
    log(`heatmap geometry after resize: ${JSON.stringify(geom)}`);
  });

  // ---------- second scenario: BERT-style text encoders (input_ids, attention_mask, token_type_ids) on token data
  const vitRun = runDir;
  let bertRowA, bertRowB;
  await check('BERT: the bert/ folder in the Explorer → select bertD_s20 + bertD_s21 → right-click → Fuse Models', async () => {
    if (!fs.existsSync(path.join(ws, 'bert'))) bertFixtures(); // throws: where the fixtures were looked for
    await palette('View: Show Explorer');
    const folder = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="bert"]').first();
    await folder.waitFor({ timeout: 30000 });
    bertRowA = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="bertD_s20.onnx"]');
    bertRowB = page.locator('.explorer-folders-view .monaco-list-row[aria-label^="bertD_s21.onnx"]');
    if (!(await bertRowA.count())) await folder.click();
    await bertRowA.waitFor({ timeout: 30000 });
    await bertRowB.waitFor({ timeout: 30000 });
    await fuseFromExplorer(bertRowA, bertRowB, '04-bert-context-menu.png');
  });

  await check('BERT: answer the prompts: anchor bertD_s20, data = the token set calib.npz, preset Recommended', async () => {
    await pickQuick('anchor', 'bertD_s20', 'bertD_s20.onnx');
    await pickQuickExact('data', 'calib.npz', 'calib.npz');
    await pickQuick('preset', 'Recommended', 'Recommended');
  });

  let bertRecord, bertDir;
  await check('BERT: the run completes; run.json records the token data and OT beats vanilla averaging', async () => {
    ({ runDir: bertDir, record: bertRecord } = await waitForRun(runsRoot, new Set([path.basename(vitRun)])));
    if (path.basename(bertRecord.data ?? '') !== 'calib.npz') throw new Error(`run.json data: ${JSON.stringify(bertRecord.data)}`);
    const names = bertRecord.layers.map((l) => l.name);
    for (const n of ['embed.tokens', 'blocks.0.attn.q', 'blocks.1.mlp.fc1', 'head.pooler']) if (!names.includes(n)) throw new Error(`no ${n} map in ${names.join(', ')}`);
    const acc = (label) => bertRecord.metrics.find((m) => m.label === label)?.accuracy;
    if (!(acc('ot') > acc('vanilla') + 0.1)) throw new Error(`ot ${acc('ot')} vs vanilla ${acc('vanilla')}`);
  });

  let bertFrame;
  await check('BERT: the Alignment view shows one non-blank heatmap per aligned layer group', async () => {
    bertFrame = await webviewFrame('alignment');
    const n = await checkHeatmaps(bertFrame, bertDir, bertRecord);
    const header = await bertFrame.locator('#run-data').textContent();
    if (!/calib\.npz/.test(header)) throw new Error(`run header data line: ${header}`);
    log(`BERT: ${n} heatmaps drawn; ${header}`);
  });

  await check('BERT: the accuracy table shows the numbers of run.json', async () => {
    await checkAccuracyTable(bertFrame, bertRecord);
  });

  await check('BERT: the model view shows three int64 inputs and the alignment structure, and evaluates on token data', async () => {
    await palette('View: Show Explorer');
    await bertRowA.click();
    const model = await modelFrame('bertD_s20.onnx');
    await model.waitForSelector('#model-io', { timeout: 30000 });
    const inputs = await model.evaluate(() => [...document.querySelectorAll('#model-io tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)).filter((r) => r[0] === 'input'));
    const names = inputs.map((r) => r[1]);
    if (JSON.stringify(names) !== JSON.stringify(['input_ids', 'attention_mask', 'token_type_ids'])) throw new Error(`inputs: ${JSON.stringify(inputs)}`);
    if (!inputs.every((r) => /int64/i.test(r[2]))) throw new Error(`input types: ${JSON.stringify(inputs)}`);
    await model.waitForSelector('#alignment-text', { timeout: 30000 });
    const text = await model.locator('#alignment-text').textContent();
    for (const g of ['embed.input_ids', 'embed.token_type_ids', 'blocks.1.ln2', 'head.pooler', 'head.classifier']) if (!text.includes(g)) throw new Error(`alignment text lacks ${g}: ${text.slice(0, 300)}`);
    log(`BERT model view: inputs ${inputs.map((r) => `${r[1]} ${r[2]} ${r[3]}`).join(', ')}`);
    await model.locator('#btn-evaluate').click();
    await pickQuickExact('Evaluate bertD_s20.onnx', 'calib.npz', 'calib.npz');
    await model.waitForSelector('#evaluation td[data-key="Accuracy"]', { timeout: 60000 });
    const acc = await model.locator('#evaluation td[data-key="Accuracy"]').textContent();
    const anchor = bertRecord.metrics.find((m) => m.file && path.basename(m.file) === 'bertD_s20.onnx');
    if (acc !== `${(100 * anchor.accuracy).toFixed(2)}%`) throw new Error(`model view evaluation ${acc} vs run.json ${anchor.accuracy}`);
    log(`BERT model view Evaluate: ${acc}`);
  });

  await check('BERT: screenshot of the Alignment view', async () => {
    await vscodeFocusAlignment();
    // A tall window so that the picture holds the whole view: accuracy, the selected map and every layer's heatmap.
    await page.setViewportSize({ width: 1600, height: 1900 });
    // … and the Runs list only as tall as its two runs (drag the sash between the two panes up).
    const sash = page.locator('.part.sidebar .monaco-sash.horizontal').first();
    const runsHeader = await page.locator('.part.sidebar .pane-header', { hasText: 'Runs' }).first().boundingBox();
    const sb = await sash.boundingBox().catch(() => null);
    if (sb && runsHeader) {
      await page.mouse.move(sb.x + sb.width / 2, sb.y + sb.height / 2);
      await page.mouse.down();
      await page.mouse.move(sb.x + sb.width / 2, runsHeader.y + runsHeader.height + 3 * 22 + 6, { steps: 5 });
      await page.mouse.up();
    }
    // The map with the most concentrated rows (soft Sinkhorn maps of these small encoders are diffuse).
    const best = (l) => l.diagnostics?.meanBestMatch ?? 0;
    const pretty = bertRecord.layers.reduce((a, b) => (best(b) > best(a) ? b : a), bertRecord.layers[0]);
    await bertFrame.locator(`.thumb-card[data-tensor="${pretty.tensor}"]`).click();
    await bertFrame.waitForFunction((t) => document.querySelector('.thumb-card[aria-selected="true"]')?.dataset.tensor === t, pretty.tensor, { timeout: 5000 });
    await bertFrame.waitForFunction(() => document.getElementById('heatmap')?.dataset.drawn === '1', null, { timeout: 5000 });
    await screenshot(bertFrame, '05-bert-alignment.png', 'screenshot-bert.png');
    const visible = await bertFrame.evaluate(() => [...document.querySelectorAll('canvas.thumb')].filter((c) => c.getBoundingClientRect().bottom <= window.innerHeight).length);
    log(`BERT screenshot: ${pretty.name} selected; ${visible} of ${bertRecord.layers.length} heatmaps in the picture`);
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

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
      const styled = await f.evaluate(() => [...document.body.querySelectorAll('[style]')].filter((e) => !e.matches('canvas, .bar')).map((e) => e.outerHTML.slice(0, 80)));
      if (styled.length) throw new Error(`style attributes in the ${view} webview: ${styled.join(', ')}`);
    }
  });
} catch (err) {
  if (!results.some((r) => !r.ok)) results.push({ name: 'harness', ok: false, error: String(err?.stack ?? err) });
} finally {
  try { fs.writeFileSync(path.join(root, 'results.json'), JSON.stringify(results, null, 2)); } catch {}
  for (const r of results.filter((x) => !x.ok)) console.error(`FAILED: ${r.name}\n${r.error}\n`);
  try { await browser?.close(); } catch {}
  server?.stop();
  tidy(root, results.length > 0 && results.every((r) => r.ok));
  log(`done; screenshots in ${shots}`);
  finish(results.filter((r) => r.ok).length, results.filter((r) => !r.ok).length);
}
