// UI test in a real editor (code-server + headless chromium) of the panel's waiting times (issue 31, "the panel
// never waits"): two ViT-B-sized runs of 52 maps (768² and 3072², 320 MiB each: scripts/e2e/panel-fixture.mjs) are
// made in the workspace's runs folder at test time; then
//  - opening run A from the Runs tree: the layer list, the first full heatmap and every thumbnail painted, timed from
//    the click (the workbench's mousedown) to the webview's frame after the paint (webview/perf.ts);
//  - heatmap switches by clicking layers never shown before (no neighbour of one shown), by clicking layers shown
//    before, and by the arrow key (the next layer), each timed inside the webview from the event to the frame after
//    the full detail map is drawn;
//  - right after A's opening, 2 clicks on layers far from the first (the fetch ahead, nearest first, has not reached
//    them): the first paint (the layer's thumbnail standing in, read back: that layer's diagonal at the thumbnail's
//    size) and the detail's paint timed separately (`placeholder`, `ms` in panel-timings.json);
//  - after every switch the painted canvas is read back: it is the requested layer's full detail map (its size), and
//    its bright diagonal lies where that layer's map puts it (each layer's offset differs: a stale or wrong map fails);
//  - opening run B (another run, cold; made without stored thumbnails or details, as runs before this version), 3
//    first-look clicks on its layers (their maps read and computed by the extension), then A again.
// Run A carries the thumbnails, detail maps and top-3 tables this version's fuse stores with the maps
// (worker/fusion/mapthumbs.ts, mapdetail.ts); a stored map that differs from the map's own block means would show as a
// wrong layer in the canvas checks below.
// The timings are reported (results JSON in the scratch folder; OTFUSE_PANEL_RESULTS=<file> also writes them in the
// otfuse-bench/1 format for BENCHMARKS.md, with OTFUSE_PANEL_LABEL as its caption); nothing asserts on time.
// Run: npm run build --silent && node scripts/e2e/ui-panel.mjs. Final line: `N passed, N failed`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkTools, endScenario, launchBrowser, log, REPO, scratchRoot, startCodeServer } from './lib.mjs';
import { T, check, focusAlignment, sideBarWidth, webviewFrame } from './ui-lib.mjs';
import { expectedShift, writePanelRun } from './panel-fixture.mjs';

const LOAD_AT_START = os.loadavg()[0];
const DETAIL_SIDE = 384; // contracts/layers.ts DETAIL_SIDE
const root = scratchRoot('ui-panel');
T.shots = path.join(root, 'shots');
T.root = root;
fs.mkdirSync(T.shots, { recursive: true });
let server, browser, harnessError;
const page = () => T.page;
const timings = { opens: [], switches: [] };

/** The webview's timing record (webview/perf.ts). */
const perfOf = (frame) => frame.evaluate(() => window.otfusePanelPerf ?? { switches: [], opens: [] });

try {
  checkTools();
  const ws = path.join(root, 'workspace');
  const runsRoot = path.join(ws, '.otfuse', 'runs');
  const template = path.join(REPO, 'test/fixtures/runs/v1-run/run.json');
  const t0 = Date.now();
  // A as this version's fuse writes it (thumbnails, details and top-3 stored with the maps), B as a run made before (none).
  const runA = writePanelRun(path.join(runsRoot, '20261207-000001-vitb-panel-a'), { seed: 1, name: 'vitb6-panel-a', template, stored: true });
  const runB = writePanelRun(path.join(runsRoot, '20261207-000002-vitb-panel-b'), { seed: 2, name: 'vitb6-panel-b', template });
  fs.writeFileSync(path.join(ws, 'README.txt'), 'otfuse panel e2e workspace\n');
  log(
    `2 runs of ${runA.record.layers.length} maps (${(runA.bytes / 2 ** 20).toFixed(0)} and ${(runB.bytes / 2 ** 20).toFixed(0)} MiB) written in ${Date.now() - t0} ms`,
  );
  T.ws = ws;
  server = await startCodeServer(root, ws, { settings: { 'workbench.colorTheme': 'Default Dark Modern' } });
  log(`code-server on :${server.port} (scratch ${root})`);
  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1100 } });
  T.page = await ctx.newPage();
  await page().goto(server.url([['extensionDevelopmentPath', server.remote(REPO)]]));
  let frame;

  await check('workbench ready; the Alignment view and the Runs list show', async () => {
    await page().locator('.monaco-workbench').waitFor({ timeout: 120000 });
    // The command appears once the extension has activated (seconds after the workbench): try again until then.
    for (let i = 0; ; i++) {
      try {
        await focusAlignment();
        await runRow(runA.record.name).waitFor({ timeout: 5000 });
        break;
      } catch (err) {
        if (i > 30) throw new Error(`the Runs list never showed the generated runs: ${err.message}`, { cause: err });
        await page().keyboard.press('Escape');
        await page().waitForTimeout(1000);
      }
    }
    frame = await webviewFrame('alignment', 60000);
    await sideBarWidth(560);
    // The click time as the workbench sees it (the Runs tree is in the workbench page, not in a webview).
    await page().evaluate(() => window.addEventListener('mousedown', () => (window.otfuseMouseDown = Date.now()), true));
  });

  const openRun = async (run, label) => {
    await runRow(run.record.name).click();
    const down = await page().evaluate(() => window.otfuseMouseDown);
    await frame.waitForFunction(
      (dir) => {
        const o = window.otfusePanelPerf?.opens.at(-1);
        return o?.runDir === dir && o.detail !== undefined && o.thumbs !== undefined && o.list !== undefined;
      },
      run.dir,
      { timeout: 120000, polling: 100 },
    );
    const o = (await perfOf(frame)).opens.at(-1);
    const sel = await frame.evaluate(() => document.getElementById('heatmap').dataset.tensor);
    await checkPainted(frame, run.record, sel);
    const since = (t) => (t === undefined ? undefined : t - down);
    const entry = { label, run: run.record.name, maps: run.record.layers.length, list: o.list - down, detail: o.detail - down, thumbs: o.thumbs - down };
    // Where the first heatmap's time went: the run's arrival in the webview, its map asked and answered.
    Object.assign(entry, { arrived: since(o.run), asked: since(o.asked), replied: since(o.replied) });
    timings.opens.push(entry);
    log(
      `open ${label}: layer list ${entry.list} ms, first heatmap ${entry.detail} ms, all ${entry.maps} thumbnails ${entry.thumbs} ms (run arrived ${entry.arrived}, map asked ${entry.asked}, answered ${entry.replied})`,
    );
  };

  await check('open a 52-map run (A) from the Runs list: the layer list, the first heatmap and every thumbnail painted', async () => {
    await openRun(runA, 'first open (run A, thumbnails and details stored by fuse)');
  });

  let layers = runA.record.layers;
  let shownRun = runA;
  const idx = (t) => layers.findIndex((l) => l.tensor === t);
  const switchTo = async (tensor, phase, how, first) => {
    const before = (await perfOf(frame)).switches.length;
    await how();
    const firstPaint = first ? await first() : undefined;
    await frame.waitForFunction((n) => (window.otfusePanelPerf?.switches.length ?? 0) > n, before, { timeout: 60000, polling: 50 });
    const s = (await perfOf(frame)).switches.at(-1);
    if (s.tensor !== tensor) throw new Error(`timed a switch to ${s.tensor}, asked for ${tensor}`);
    await checkPainted(frame, shownRun.record, tensor);
    const l = layers[idx(tensor)];
    const fix = (v) => (v === undefined ? undefined : Number(v.toFixed(1)));
    const entry = { phase, run: shownRun.record.name, tensor, size: `${l.rows}×${l.cols}`, ms: fix(s.ms), cached: s.cached, reply: fix(s.reply) };
    // ms to the first paint: the thumbnail standing in when one was (placeholder), else the detail's paint itself.
    if (first) Object.assign(entry, { placeholder: fix(s.placeholder), firstPaint: fix(s.placeholder ?? s.ms), placeholderSeen: firstPaint });
    timings.switches.push(entry);
    await page().waitForTimeout(400); // a user's pause between two looks
  };
  const clickOn = (tensor) => () => frame.locator(`.thumb-card[data-tensor="${tensor}"]`).click();
  const click = (tensor, phase) => switchTo(tensor, phase, clickOn(tensor));
  /** A click on a layer whose detail is not here: the canvas read back at its first paint showing that layer (the
   * thumbnail standing in: that layer's diagonal at the thumbnail's size), then the detail as for every switch. */
  const clickAhead = (tensor) =>
    switchTo(tensor, 'click right after the opening, not fetched ahead yet', clickOn(tensor), async () => {
      const got = await (await frame.waitForFunction(canvasState, ['#heatmap', 4, tensor], { timeout: 60000, polling: 'raf' })).jsonValue();
      if (!got.placeholder) return false; // the detail came first (nothing stood in)
      const l = layers[idx(tensor)];
      if (got.rows >= Math.min(l.rows, DETAIL_SIDE)) throw new Error(`${tensor}: the stand-in is ${got.rows}×${got.cols}, not a thumbnail`);
      checkDiagonal(l, idx(tensor), got.peaks, 0.022, `${tensor}'s thumbnail standing in`);
      return true;
    });

  const opened = idx(await frame.evaluate(() => document.getElementById('heatmap').dataset.tensor));
  // Right after the opening, far from the first layer: layers the fetch ahead (nearest first) has not reached.
  const far = opened < layers.length / 2 ? [layers.length - 1, layers.length - 4] : [0, 3];
  await check('2 clicks right after the opening on layers not fetched ahead yet: the thumbnail at once, then the detail', async () => {
    for (const k of far) await clickAhead(layers[k].tensor);
  });

  await check('every thumbnail shows its own layer', async () => {
    const drawn = await frame.evaluate(() => document.querySelectorAll('canvas.thumb[data-drawn="1"]').length);
    if (drawn !== runA.record.layers.length) throw new Error(`${drawn} thumbnails for ${runA.record.layers.length} maps`);
    // Every thumbnail (stored by fuse for A) shows its own layer's diagonal.
    for (const [k, l] of runA.record.layers.entries()) {
      const got = await peaks(frame, `canvas.thumb[data-tensor="${l.tensor}"]`, 4);
      checkDiagonal(l, k, got.peaks, 0.022, `thumbnail of ${l.tensor}`);
    }
    await page().screenshot({ path: path.join(T.shots, '01-open.png') });
  });

  const shown = await frame.evaluate(() => document.getElementById('heatmap').dataset.tensor);
  const near = (k) => [k - 1, k, k + 1];
  // Layers never shown and no neighbour of a shown one (a panel may fetch neighbours ahead): 768² and 3072² maps.
  const firsts = [];
  for (const k of [5, 17, 30, 44, 9, 22, 37, 50, 13, 26, 41, 2, 33, 47]) {
    const seen = [idx(shown), ...far, ...firsts].flatMap(near);
    if (!seen.includes(k) && !seen.includes(k - 1) && !seen.includes(k + 1)) firsts.push(k);
  }
  await check(`${firsts.length} switches by clicking a layer not shown before: the painted map is that layer's`, async () => {
    for (const k of firsts) await click(layers[k].tensor, 'click, first look');
  });

  // The requests that fetched run A's stored details ahead (maps, bytes, ms each): the channel's throughput.
  timings.ahead = (await perfOf(frame)).ahead ?? [];
  const aheadBytes = timings.ahead.reduce((s, a) => s + a.bytes, 0);
  const aheadMs = timings.ahead.reduce((s, a) => s + a.ms, 0);
  log(
    `fetched ahead: ${timings.ahead.reduce((s, a) => s + a.maps, 0)} maps, ${(aheadBytes / 2 ** 20).toFixed(1)} MiB in ${timings.ahead.length} requests, ${aheadMs.toFixed(0)} ms waiting in all`,
  );

  await check('6 switches back to layers shown before: the painted map is that layer', async () => {
    for (const k of firsts.slice(0, 6)) await click(layers[k].tensor, 'click, shown before');
  });

  await check('6 switches with the arrow key (the next layer): the painted map is that layer', async () => {
    let k = idx(await frame.evaluate(() => document.querySelector('.thumb-card[aria-selected="true"]').dataset.tensor));
    if (k + 7 >= layers.length) {
      await click(layers[20].tensor, 'click, first look');
      k = 20;
    }
    for (let step = 0; step < 6; step++) {
      k++;
      await switchTo(layers[k].tensor, 'arrow key, next layer', () => frame.locator('.thumb-card[aria-selected="true"]').press('ArrowRight'));
    }
    await page().screenshot({ path: path.join(T.shots, '02-switched.png') });
  });

  await check('open another 52-map run (B), 3 first looks there, then A again: the right maps painted', async () => {
    await openRun(runB, 'another run (B, made before: no stored thumbnails or details)');
    [shownRun, layers] = [runB, runB.record.layers];
    const sel = idx(await frame.evaluate(() => document.getElementById('heatmap').dataset.tensor));
    for (const k of [8, 29, 45].filter((k) => Math.abs(k - sel) > 1)) await click(layers[k].tensor, 'click, first look, run B (made before)');
    [shownRun, layers] = [runA, runA.record.layers];
    await openRun(runA, 'run A again');
  });
} catch (err) {
  harnessError = err ?? new Error('harness error');
} finally {
  writeTimings();
  await endScenario(T, root, { browser, server, err: harnessError });
}

function runRow(name) {
  return page().locator('.part.sidebar .monaco-list-row', { hasText: name }).first();
}

/** The detail canvas shows `tensor`'s full detail map: its data size, and the bright diagonal at that layer's offset. */
async function checkPainted(frame, record, tensor) {
  const k = record.layers.findIndex((l) => l.tensor === tensor);
  const l = record.layers[k];
  if (k < 0) throw new Error(`no layer ${tensor}`);
  const got = await peaks(frame, '#heatmap', 8);
  if (got.tensor !== tensor) throw new Error(`the heatmap shows ${got.tensor}, asked for ${tensor}`);
  const side = Math.min(l.rows, DETAIL_SIDE);
  if (got.rows !== side || got.cols !== Math.min(l.cols, DETAIL_SIDE)) throw new Error(`${tensor}: drawn ${got.rows}×${got.cols}, its detail map is ${side}²`);
  checkDiagonal(l, k, got.peaks, 0.01, tensor);
}

/** The layer's bright diagonal is where its map puts it (column (i + shift) mod n) at each sampled row. */
function checkDiagonal(l, k, peaksAt, tolerance, what) {
  const shift = expectedShift(k, l.cols);
  for (const p of peaksAt) {
    const want = ((Math.floor(p.y * l.rows) + shift) % l.cols) / l.cols;
    const off = Math.abs(p.x - want);
    if (Math.min(off, 1 - off) > tolerance)
      throw new Error(`${what}: the diagonal at row ${p.y.toFixed(3)} is at column ${p.x.toFixed(3)}, the layer's map has it at ${want.toFixed(3)}`);
  }
}

/**
 * In the page: the canvas `sel`'s state — its tensor, size, whether a thumbnail stands in, and for `count` rows the
 * column where viridis is brightest (r + g grows along the ramp); null while `tensor` is given and not yet shown.
 */
function canvasState([sel, count, tensor]) {
  const c = document.querySelector(sel);
  if (!c || (tensor !== undefined && c.dataset.tensor !== tensor)) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const rows = [];
  for (let s = 0; s < count; s++) {
    const y = Math.floor(((s + 0.5) * c.height) / count);
    let best = -1;
    let bx = 0;
    for (let x = 0; x < c.width; x++) {
      const p = 4 * (y * c.width + x);
      if (d[p] + d[p + 1] > best) {
        best = d[p] + d[p + 1];
        bx = x;
      }
    }
    rows.push({ y: (y + 0.5) / c.height, x: (bx + 0.5) / c.width });
  }
  return { tensor: c.dataset.tensor, placeholder: c.dataset.placeholder === '1', rows: Number(c.dataset.rows), cols: Number(c.dataset.cols), peaks: rows };
}

/** For `count` rows of the canvas `selector`: its state as canvasState gives it. */
function peaks(frame, selector, count) {
  return frame.evaluate(canvasState, [selector, count, undefined]);
}

/** Median and max of a list of ms. */
function stats(list) {
  const s = [...list].sort((a, b) => a - b);
  return { n: s.length, median: s.length ? s[Math.floor((s.length - 1) / 2)] : undefined, max: s.at(-1) };
}

function writeTimings() {
  const phases = [...new Set(timings.switches.map((s) => s.phase))];
  const rows = phases.map((phase) => {
    const ms = timings.switches.filter((s) => s.phase === phase).map((s) => s.ms);
    const st = stats(ms);
    const replies = stats(timings.switches.filter((s) => s.phase === phase && s.reply !== undefined).map((s) => s.reply));
    const cached = timings.switches.filter((s) => s.phase === phase && s.cached).length;
    const first = stats(timings.switches.filter((s) => s.phase === phase && s.firstPaint !== undefined).map((s) => s.firstPaint));
    const row = { what: `switch: ${phase}`, n: st.n, cached, median: st.median, max: st.max, reply: replies.median };
    return first.n ? { ...row, first: first.median, firstMax: first.max } : row;
  });
  const all = stats(timings.switches.map((s) => s.ms));
  if (all.n) rows.push({ what: 'switch: all', n: all.n, median: all.median, max: all.max });
  for (const o of timings.opens) {
    rows.push({ what: `open ${o.label}: layer list`, n: 1, median: o.list, max: o.list });
    rows.push({ what: `open ${o.label}: first heatmap`, n: 1, median: o.detail, max: o.detail });
    rows.push({ what: `open ${o.label}: all ${o.maps} thumbnails`, n: 1, median: o.thumbs, max: o.thumbs });
  }
  const doc = { switches: timings.switches, opens: timings.opens, ahead: timings.ahead, rows };
  try {
    fs.writeFileSync(path.join(root, 'panel-timings.json'), JSON.stringify(doc, null, 1) + '\n');
  } catch {}
  for (const r of rows)
    log(
      `${r.what}: median ${r.median} ms, max ${r.max} ms (n ${r.n})${r.first !== undefined ? `; first paint median ${r.first} ms, max ${r.firstMax} ms` : ''}`,
    );
  const out = process.env.OTFUSE_PANEL_RESULTS;
  if (!out || !rows.length) return;
  const label = process.env.OTFUSE_PANEL_LABEL ?? 'this build';
  const cpu = os.cpus();
  const bench = {
    format: 'otfuse-bench/1',
    command: 'node scripts/e2e/ui-panel.mjs',
    machine: `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, code-server 4.100.3 + headless chromium, ${new Date().toISOString().slice(0, 10)}`,
    date: new Date().toISOString(),
    load: Number(LOAD_AT_START.toFixed(2)),
    caption: `**${label}** — ms from the user's click/key to the frame after the paint (1-minute load ${LOAD_AT_START.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end)`,
    columns: [
      { key: 'what', label: 'what' },
      { key: 'n', label: 'n', format: 'int' },
      { key: 'cached', label: "from the view's cache", format: 'int' },
      { key: 'median', label: 'median ms', format: 'fixed', digits: 0 },
      { key: 'max', label: 'max ms', format: 'fixed', digits: 0 },
      { key: 'reply', label: "median ms to the extension's answer", format: 'fixed', digits: 0 },
      { key: 'first', label: 'median ms to the first paint (thumbnail standing in)', format: 'fixed', digits: 0 },
      { key: 'firstMax', label: 'max ms to the first paint', format: 'fixed', digits: 0 },
    ],
    rows,
    switches: timings.switches,
    opens: timings.opens,
  };
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(bench, null, 1) + '\n');
  fs.renameSync(tmp, out);
  log(`timings written to ${out}`);
}
