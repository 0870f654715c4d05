// A run folder sized like a ViT-B fusion, for the panel's timing scenario (ui-panel.mjs): run.json + a
// maps.safetensors of `blocks` × 8 maps + 4 embedding maps (6 blocks: 52 maps) with ViT-B's widths: 768² for the
// attention, residual and embedding maps and 3072² for the MLP hidden (fc1) maps, float32 n·P as fuse writes them
// (rows sum to 1). 6 blocks: 325 MB. Made at test time in a temp folder: never committed.
//
// Each map is a soft cyclic shift: row i puts most of its mass near column (i + shift) mod n, the rest spread
// thinly, so the painted heatmap shows one bright wrapped diagonal whose offset says which layer it is. Shifts are
// distinct multiples of n/53 (at least 1.9 % of the width apart), so a panel that paints the wrong (or a stale)
// layer is caught by reading the canvas. `expectedShift(layerIndex, n)` is what the test compares with.
import fs from 'node:fs';
import path from 'node:path';

const HIDDEN = 768;
const MLP = 3072;

/** The column offset of layer k's diagonal in an n-wide map. */
export function expectedShift(k, n) {
  return Math.floor((n * ((k * 7 + 3) % 53)) / 53);
}

/** The layers of a `blocks`-block ViT-B-sized run, in fuse's order (names and kinds as fuse writes them). */
export function vitbLayers(blocks = 6) {
  const out = [
    ['embed.cls', 'cls-token', HIDDEN],
    ['embed.pos', 'position', HIDDEN],
    ['embed.patch', 'patch-conv', HIDDEN],
    ['embed.stream', 'residual', HIDDEN],
  ];
  for (let b = 0; b < blocks; b++)
    out.push(
      [`blocks.${b}.attn.q`, 'attn-q', HIDDEN],
      [`blocks.${b}.attn.k`, 'attn-k', HIDDEN],
      [`blocks.${b}.attn.v`, 'attn-v', HIDDEN],
      [`blocks.${b}.attn.o`, 'attn-o', HIDDEN],
      [`blocks.${b}.resid1`, 'residual', HIDDEN],
      [`blocks.${b}.mlp.fc1`, 'mlp-fc1', MLP],
      [`blocks.${b}.mlp.fc2`, 'mlp-fc2', HIDDEN],
      [`blocks.${b}.resid2`, 'residual', HIDDEN],
    );
  return out.map(([name, kind, n], k) => ({ name, kind, rows: n, cols: n, model: 1, tensor: `m1/${name}`, index: k }));
}

/** A small deterministic PRNG (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Layer k's map: n·P, rows summing to 1, mass on a band around the shifted diagonal plus a faint random floor. */
function mapData(k, n, seed) {
  const rand = rng(seed * 1000 + k + 1);
  const data = new Float32Array(n * n);
  const shift = expectedShift(k, n);
  const sharp = 0.35 + 0.5 * rand(); // how hard the map is: the diagnostics below follow it
  const band = [1, 0.5, 0.25];
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const v = rand() * rand() * 1e-3;
      data[row + j] = v;
      sum += v;
    }
    const c = (i + shift) % n;
    for (let d = -2; d <= 2; d++) {
      const v = sharp * band[Math.abs(d)] * (0.8 + 0.4 * rand()) * 0.04;
      data[row + ((c + d + n) % n)] += v;
      sum += v;
    }
    for (let j = 0; j < n; j++) data[row + j] /= sum;
  }
  return { data, sharp };
}

const THUMB_SIDE = 96;
const DETAIL_SIDE = 384;
const TOP_K = 3;

/** The block means fuse stores with a map (worker/fusion/mapthumbs.ts BlockMeans: each row's column block summed,
 * then added to its cell, divided by the cell's count; float32): its thumbnail (96²) and detail (384²). */
function blockMeans(data, n, m, side) {
  const oR = Math.min(n, side);
  const oC = Math.min(m, side);
  const start = Int32Array.from({ length: oC + 1 }, (_, c) => (c === oC ? m : Math.ceil((c * m) / oC)));
  const acc = new Float64Array(oR * oC);
  const rowCount = new Uint32Array(oR);
  for (let i = 0; i < n; i++) {
    const r = Math.floor((i * oR) / n);
    rowCount[r]++;
    for (let c = 0; c < oC; c++) {
      let s = 0;
      for (let k = i * m + start[c]; k < i * m + start[c + 1]; k++) s += data[k];
      acc[r * oC + c] += s;
    }
  }
  return Float32Array.from(acc, (v, k) => v / (rowCount[Math.floor(k / oC)] * (start[(k % oC) + 1] - start[k % oC])));
}

/** Each row's 3 largest columns and their share of the row's positive mass (worker/fusion/mapdetail.ts). */
function topMatches(data, n, m) {
  const cols = new Int32Array(n * TOP_K).fill(-1);
  const mass = new Float64Array(n * TOP_K);
  for (let i = 0; i < n; i++) {
    const bj = [-1, -1, -1];
    const bv = [-Infinity, -Infinity, -Infinity];
    let sum = 0;
    for (let j = 0; j < m; j++) {
      const v = data[i * m + j];
      if (!Number.isFinite(v) || v <= 0) continue;
      sum += v;
      if (v <= bv[TOP_K - 1]) continue;
      let p = TOP_K - 1;
      while (p > 0 && v > bv[p - 1]) {
        bv[p] = bv[p - 1];
        bj[p] = bj[p - 1];
        p--;
      }
      bv[p] = v;
      bj[p] = j;
    }
    for (let p = 0; p < TOP_K; p++)
      if (bj[p] >= 0) {
        cols[i * TOP_K + p] = bj[p];
        mass[i * TOP_K + p] = sum > 0 ? bv[p] / sum : 0;
      }
  }
  return { cols, mass };
}

/** Writes `<dir>` = run.json + maps.safetensors; returns { dir, record, bytes }. `stored`: with the thumbnails and
 * the detail maps + top-3 tables a fuse of this version stores, in its layout (each map's detail/top/topmass right
 * after it, the thumbnails at the end: worker/fusion/mapstore.ts); a run made before has none. */
export function writePanelRun(dir, { blocks = 6, seed = 1, name = `vitb${blocks}-panel-s${seed}`, template, stored = false } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const layers = vitbLayers(blocks);
  const header = { __metadata__: { dtype: 'F32', generator: 'scripts/e2e/panel-fixture.mjs' } };
  let offset = 0;
  const place = (key, dtype, shape, width) => {
    const bytes = width * shape[0] * shape[1];
    header[key] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  };
  const detailed = (l) => stored && (l.rows > DETAIL_SIDE || l.cols > DETAIL_SIDE);
  for (const l of layers) {
    place(l.tensor, 'F32', [l.rows, l.cols], 4);
    if (!detailed(l)) continue;
    place(`detail/${l.tensor}`, 'F32', [Math.min(l.rows, DETAIL_SIDE), Math.min(l.cols, DETAIL_SIDE)], 4);
    place(`top/${l.tensor}`, 'I32', [l.rows, TOP_K], 4);
    place(`topmass/${l.tensor}`, 'F64', [l.rows, TOP_K], 8);
  }
  const thumbed = stored ? layers.filter((l) => l.rows > THUMB_SIDE || l.cols > THUMB_SIDE) : [];
  for (const l of thumbed) place(`thumb/${l.tensor}`, 'F32', [Math.min(l.rows, THUMB_SIDE), Math.min(l.cols, THUMB_SIDE)], 4);
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, 'utf8');
  const file = path.join(dir, 'maps.safetensors');
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  const info = [];
  const bytes = (a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  try {
    fs.writeSync(fd, head);
    const small = [];
    for (const l of layers) {
      const { data, sharp } = mapData(l.index, l.rows, seed);
      fs.writeSync(fd, bytes(data));
      info.push({ ...l, sharp });
      if (detailed(l)) {
        const top = topMatches(data, l.rows, l.cols);
        for (const a of [blockMeans(data, l.rows, l.cols, DETAIL_SIDE), top.cols, top.mass]) fs.writeSync(fd, bytes(a));
      }
      if (thumbed.includes(l)) small.push(blockMeans(data, l.rows, l.cols, THUMB_SIDE));
    }
    for (const t of small) fs.writeSync(fd, bytes(t));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const base = template ? JSON.parse(fs.readFileSync(template, 'utf8')) : {};
  const record = {
    ...base,
    id: path.basename(dir),
    name,
    status: 'done',
    createdAt: new Date().toISOString(),
    fusedModel: path.join(dir, 'fused.onnx'),
    mapsFile: 'maps.safetensors',
    layers: info.map(({ index: _i, sharp, ...l }) => ({
      ...l,
      // Residual maps carry no diagnostics (as fuse writes them); the others a row confidence that follows `sharp`.
      diagnostics: l.kind === 'residual' ? {} : { meanBestMatch: 0.1 + 0.3 * sharp, hardness: 1 - 0.3 * sharp, cost: 0.5, entropy: 9 - sharp, ms: 100 },
    })),
  };
  delete record.finetune;
  delete record.finetunes;
  delete record.baselineFinetune;
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(record, null, 1) + '\n');
  return { dir, record, bytes: head.length + offset };
}

// `node scripts/e2e/panel-fixture.mjs <dir> [blocks] [seed]`: writes one run folder (for a look at it in an editor).
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const [dir, blocks = '6', seed = '1'] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node scripts/e2e/panel-fixture.mjs <run folder> [blocks] [seed]');
    process.exit(2);
  }
  const t0 = Date.now();
  const template = path.join(path.dirname(new URL(import.meta.url).pathname), '../../test/fixtures/runs/v1-run/run.json');
  const r = writePanelRun(dir, { blocks: Number(blocks), seed: Number(seed), template });
  console.log(`${r.dir}: ${r.record.layers.length} maps, ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${Date.now() - t0} ms`);
}
