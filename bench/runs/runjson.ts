// How long the Runs view's reader blocks the thread it runs on (the extension host) for hostile run.json files:
// ten 60 MB files (refused by size) and ten files at the size limit (read and parsed), against the old
// synchronous read + JSON.parse of whole files. Reports the longest event-loop stall and the wall time.
// Usage: node dist-bench/runs/runjson.js [--old N]   (N: how many 60 MB files the old synchronous path reads)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listRunFilesAsync, RUN_FILE_MAX_BYTES } from '../../worker/runs/reader';

function jsonOf(bytes: number): string {
  const row = JSON.stringify({ step: 1, loss: 0.123456789, lr: 0.0002 });
  const n = Math.floor((bytes - 200) / (row.length + 1));
  return `{"id":"x","metrics":[],"layers":[],"finetune":{"history":[${Array(n).fill(row).join(',')}]}}`;
}

function folder(count: number, bytes: number): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-runjson-'));
  const text = jsonOf(bytes);
  for (let i = 0; i < count; i++) {
    fs.mkdirSync(path.join(root, `r${i}`));
    fs.writeFileSync(path.join(root, `r${i}`, 'run.json'), text);
  }
  return root;
}

async function stalls(work: () => Promise<unknown>): Promise<{ maxStallMs: number; wallMs: number; cpuMs: number }> {
  let last = performance.now();
  let maxStallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxStallMs = Math.max(maxStallMs, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await work();
  const c = process.cpuUsage(c0);
  const wallMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(timer);
  return { maxStallMs, wallMs, cpuMs: (c.user + c.system) / 1000 };
}

async function main(): Promise<void> {
  const oldCount = Number(process.argv[process.argv.indexOf('--old') + 1] || 0);
  const big = folder(10, 60e6);
  const limit = folder(10, RUN_FILE_MAX_BYTES - 1024);
  try {
    const a = await stalls(() => listRunFilesAsync(big));
    console.log(`ten 60 MB run.json, new reader: longest stall ${a.maxStallMs.toFixed(1)} ms, wall ${a.wallMs.toFixed(0)} ms, CPU ${a.cpuMs.toFixed(0)} ms`);
    const b = await stalls(() => listRunFilesAsync(limit));
    console.log(
      `ten run.json at the ${RUN_FILE_MAX_BYTES / 2 ** 20} MiB limit, new reader: longest stall ${b.maxStallMs.toFixed(1)} ms, wall ${b.wallMs.toFixed(0)} ms, CPU ${b.cpuMs.toFixed(0)} ms`,
    );
    if (oldCount > 0) {
      const c = await stalls(async () => {
        for (let i = 0; i < oldCount; i++) JSON.parse(fs.readFileSync(path.join(big, `r${i}`, 'run.json'), 'utf8'));
      });
      console.log(`${oldCount} × 60 MB run.json, old path (sync read + JSON.parse): longest stall ${c.maxStallMs.toFixed(0)} ms, CPU ${c.cpuMs.toFixed(0)} ms`);
    }
  } finally {
    fs.rmSync(big, { recursive: true, force: true });
    fs.rmSync(limit, { recursive: true, force: true });
  }
}

void main();
