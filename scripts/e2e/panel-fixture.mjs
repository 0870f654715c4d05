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

/** The thumbnail fuse stores with a map (worker/fusion/mapthumbs.ts BlockMeans: each row's column block summed, then
 * added to its cell, divided by the cell's count; float32). */
function thumbnail(data, n, m) {
  const oR = Math.min(n, THUMB_SIDE);
  const oC = Math.min(m, THUMB_SIDE);
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

/** Writes `<dir>` = run.json + maps.safetensors; returns { dir, record, bytes }. `thumbs`: with the thumbnails a
 * fuse of this version stores (a run made before it has none). */
export function writePanelRun(dir, { blocks = 6, seed = 1, name = `vitb${blocks}-panel-s${seed}`, template, thumbs = false } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const layers = vitbLayers(blocks);
  const header = { __metadata__: { dtype: 'F32', generator: 'scripts/e2e/panel-fixture.mjs' } };
  let offset = 0;
  for (const l of layers) {
    const bytes = l.rows * l.cols * 4;
    header[l.tensor] = { dtype: 'F32', shape: [l.rows, l.cols], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const thumbed = thumbs ? layers.filter((l) => l.rows > THUMB_SIDE || l.cols > THUMB_SIDE) : [];
  for (const l of thumbed) {
    const shape = [Math.min(l.rows, THUMB_SIDE), Math.min(l.cols, THUMB_SIDE)];
    header[`thumb/${l.tensor}`] = { dtype: 'F32', shape, data_offsets: [offset, offset + 4 * shape[0] * shape[1]] };
    offset += 4 * shape[0] * shape[1];
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, 'utf8');
  const file = path.join(dir, 'maps.safetensors');
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  const info = [];
  try {
    fs.writeSync(fd, head);
    const small = [];
    for (const l of layers) {
      const { data, sharp } = mapData(l.index, l.rows, seed);
      fs.writeSync(fd, new Uint8Array(data.buffer));
      info.push({ ...l, sharp });
      if (thumbed.includes(l)) small.push(thumbnail(data, l.rows, l.cols));
    }
    for (const t of small) fs.writeSync(fd, new Uint8Array(t.buffer));
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
