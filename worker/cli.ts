// `otfuse`: a thin shell over the engine API (in-process). Exit codes: 0 ok, 1 failed, 2 bad usage.
import fs from 'node:fs';
import path from 'node:path';
import { engine } from './api';
import { OtfuseError, toErrorInfo } from './errors';
import type { DataArg, DatasetSpec, FuseRecipe, FuseRequest, FuseResult, JobContext, RunRecord } from './types';
import { describeProvider, ProviderChoice } from './runtime/providers';
import { ParsedArgs, bool, num, numList, oneOf, parseArgs, rejectUnknown, str } from './cli/args';
import { ProgressBar } from './cli/progress';
import { validateRecipe } from './fusion/recipe';

const VERSION = '0.1.0';
const PROVIDERS = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
const BOOLEANS = new Set(['json', 'help', 'alignment', 'version', 'finetune', 'head-aware']);
// Only `fuse` has the boolean --no-eval; elsewhere --eval takes a dataset (finetune --eval EVAL).
const FUSE_BOOLEANS = new Set([...BOOLEANS, 'eval']);
const ALIASES: Record<string, string> = { o: 'output', h: 'help', j: 'json', v: 'version' };
const DATA_FLAGS = ['data', 'labels', 'mean', 'std', 'scale', 'limit', 'offset'];
const COMMON = ['json', 'help', 'provider', 'batch-size'];

const USAGE = `otfuse ${VERSION} — fuse transformer checkpoints (ONNX) with optimal transport

Usage:
  otfuse eval MODEL --data DATA [--limit N] [--batch-size N]
  otfuse inspect MODEL [--alignment]
  otfuse fuse A.onnx B.onnx [C.onnx …] --data DATA [--anchor B.onnx] [-o fused.onnx] [--recipe r.json]
         [--solver emd|sinkhorn] [--reg 0.08] [--align-by acts|wts] [--residual mean|no_resid|only_resid|
         weighted_scalar|weighted_matrix] [--qk separate|joint|eq_t_map] [--samples 200] [--token-filter all|cls|window] [--token-budget 8192] [--maps-dtype F32|F16]
         [--metric euclidean|sqeuclidean|cosine] [--cost-norm max|median|mean|none] [--weights 0.5,0.5]
         [--preset default|reference|exact|weights] [--head-aware] [--eval-data DATA] [--eval-limit N] [--no-eval] [--runs-dir DIR]
         [--finetune --train-data DATA --epochs 1 --lr 1e-4]
  otfuse finetune MODEL --data TRAIN [--eval EVAL] -o out.onnx [--epochs 1] [--max-steps N] [--lr 1e-4]
         [--batch-size 64] [--weight-decay 0.01] [--warmup-steps N] [--label-smoothing 0] [--clip-norm 1] [--seed 0]
  otfuse demo          fuse the bundled example ViTs on the bundled data, finetune briefly, print a table
  otfuse providers     which execution provider runs, and why the others do not

DATA is a .npz (x float32 + y int labels, or arrays named after the model inputs + y), a JSON dataset spec,
or IDX images with --labels FILE --mean M --std S [--scale 255].
Common options: --provider auto|cpu|cuda|webgpu (default auto), --json (machine-readable output on stdout).
Exit codes: 0 ok, 1 failed, 2 bad usage.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') { console.log(USAGE); return command ? 0 : 2; }
  if (command === '--version' || command === '-v') { console.log(VERSION); return 0; }
  const args = parseArgs(rest, command === 'fuse' ? FUSE_BOOLEANS : BOOLEANS, ALIASES);
  if (bool(args, 'help')) { console.log(USAGE); return 0; }
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    if (++interrupts > 1) process.exit(130);
    process.stderr.write('\notfuse: cancelling (Ctrl-C again to quit at once)…\n');
    controller.abort();
  });
  const context: JobContext = { signal: controller.signal, onProgress: (e) => bar.update(e) };
  try {
    switch (command) {
      case 'eval': return await cmdEval(args, context);
      case 'inspect': return await cmdInspect(args);
      case 'fuse': return await cmdFuse(args, context);
      case 'finetune': return await cmdFinetune(args, context);
      case 'demo': return await cmdDemo(args, context);
      case 'providers': return await cmdProviders(args);
      default: throw new OtfuseError('BAD_USAGE', `unknown command '${command}' (try otfuse --help)`);
    }
  } finally {
    bar.done();
  }
}

function known(...names: string[]): Set<string> {
  return new Set([...COMMON, ...names]);
}

function provider(args: ParsedArgs): ProviderChoice | undefined {
  return oneOf(args, 'provider', PROVIDERS);
}

function dataArg(args: ParsedArgs, flag = 'data'): DataArg | undefined {
  const file = str(args, flag);
  if (!file) return undefined;
  const spec: DatasetSpec = { path: file };
  // Preprocessing and windowing flags apply to the main --data only.
  if (flag === 'data') {
    const labels = str(args, 'labels');
    if (labels) spec.labels = labels;
    const mean = numList(args, 'mean');
    const std = numList(args, 'std');
    if (mean) spec.mean = mean;
    if (std) spec.std = std;
    const scale = num(args, 'scale');
    if (scale !== undefined) spec.scale = scale;
    const limit = num(args, 'limit');
    if (limit !== undefined) spec.limit = limit;
    const offset = num(args, 'offset');
    if (offset !== undefined) spec.offset = offset;
  }
  return Object.keys(spec).length === 1 ? file : spec;
}

function requireOne(args: ParsedArgs, what: string): string {
  if (args.positional.length !== 1) throw new OtfuseError('BAD_USAGE', `expected one ${what}, got ${args.positional.length}`);
  return args.positional[0];
}

const bar = new ProgressBar();

function print(args: ParsedArgs, json: unknown, human: () => string): void {
  bar.done(); // the result starts on a clean line
  if (bool(args, 'json')) console.log(JSON.stringify(json, null, 2));
  else console.log(human());
}

async function cmdEval(args: ParsedArgs, context: JobContext): Promise<number> {
  rejectUnknown(args, known(...DATA_FLAGS));
  const model = requireOne(args, 'model');
  const data = dataArg(args);
  if (!data) throw new OtfuseError('BAD_USAGE', 'eval needs --data');
  const result = await engine.evaluate({ model, data, provider: provider(args), batchSize: num(args, 'batch-size') }, context);
  print(args, result, () => [
    `model     ${model}`,
    `samples   ${result.samples}`,
    `accuracy  ${(result.accuracy * 100).toFixed(2)} %`,
    `loss      ${result.loss.toFixed(4)}`,
    `time      ${result.seconds.toFixed(2)} s (${Math.round(result.samples / Math.max(result.seconds, 1e-9))} samples/s)`,
    describeProvider(result.provider),
  ].join('\n'));
  return 0;
}

async function cmdInspect(args: ParsedArgs): Promise<number> {
  rejectUnknown(args, known('alignment'));
  const model = requireOne(args, 'model');
  const result = await engine.inspect({ model, alignment: bool(args, 'alignment'), provider: provider(args) });
  print(args, result, () => {
    const s = result.summary;
    const io = (list: typeof s.inputs) => list.map((v) => `  ${v.name}: ${v.type} [${v.shape.join(', ')}]`).join('\n');
    const ops = Object.entries(s.opHistogram).sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
    const lines = [
      `model       ${s.file}`,
      `producer    ${s.producer || '?'} (IR ${s.irVersion}, opset ${Object.entries(s.opsets).map(([d, v]) => `${d} ${v}`).join(', ')})`,
      `parameters  ${s.parameterCount.toLocaleString('en-US')} in ${s.initializerCount} initializers`,
      `nodes       ${s.nodeCount}`,
      `inputs\n${io(s.inputs)}`,
      `outputs\n${io(s.outputs)}`,
      `ops         ${ops}`,
      describeProvider(result.provider),
    ];
    if (result.alignment) lines.push('', result.alignment.text);
    return lines.join('\n');
  });
  return 0;
}

function recipeFrom(args: ParsedArgs): FuseRecipe {
  const file = str(args, 'recipe');
  let recipe: FuseRecipe = {};
  if (file) {
    try {
      recipe = JSON.parse(fs.readFileSync(file, 'utf8')) as FuseRecipe;
    } catch (err) {
      throw new OtfuseError('BAD_USAGE', `cannot read recipe: ${(err as Error).message}`, { file });
    }
    recipe = validateRecipe(recipe, file);
  }
  const set = <K extends keyof FuseRecipe>(key: K, value: FuseRecipe[K] | undefined) => { if (value !== undefined) recipe[key] = value; };
  set('name', str(args, 'name'));
  set('solver', oneOf(args, 'solver', ['emd', 'sinkhorn'] as const));
  set('reg', num(args, 'reg'));
  set('alignBy', oneOf(args, 'align-by', ['acts', 'wts'] as const));
  set('residualPolicy', oneOf(args, 'residual', ['no_resid', 'only_resid', 'mean', 'weighted_scalar', 'weighted_matrix'] as const));
  set('qk', oneOf(args, 'qk', ['separate', 'joint', 'eq_t_map'] as const));
  set('samples', num(args, 'samples'));
  set('tokenFilter', oneOf(args, 'token-filter', ['all', 'cls', 'window'] as const));
  set('tokenBudget', num(args, 'token-budget'));
  set('mapsDtype', oneOf(args, 'maps-dtype', ['F32', 'F16'] as const));
  set('groundMetric', oneOf(args, 'metric', ['euclidean', 'sqeuclidean', 'cosine'] as const));
  set('costNorm', oneOf(args, 'cost-norm', ['max', 'median', 'mean', 'none'] as const));
  set('weights', numList(args, 'weights'));
  set('preset', oneOf(args, 'preset', ['default', 'reference', 'exact', 'weights'] as const));
  set('headAware', bool(args, 'head-aware'));
  return recipe;
}

const FUSE_FLAGS = ['anchor', 'output', 'recipe', 'name', 'solver', 'reg', 'align-by', 'residual', 'qk', 'samples', 'token-filter', 'token-budget', 'maps-dtype', 'metric',
  'cost-norm', 'weights', 'preset', 'head-aware', 'eval-data', 'eval-limit', 'eval', 'runs-dir', 'finetune', 'train-data', 'epochs', 'max-steps', 'lr'];

async function cmdFuse(args: ParsedArgs, context: JobContext): Promise<number> {
  rejectUnknown(args, known(...DATA_FLAGS, ...FUSE_FLAGS));
  if (args.positional.length < 2) throw new OtfuseError('BAD_USAGE', 'fuse needs two or more models');
  const request: FuseRequest = {
    models: args.positional,
    anchor: str(args, 'anchor'),
    data: dataArg(args),
    evalData: dataArg(args, 'eval-data'),
    recipe: recipeFrom(args),
    output: str(args, 'output'),
    runsDir: str(args, 'runs-dir'),
    skipEval: bool(args, 'eval') === false,
    evalLimit: num(args, 'eval-limit'),
    provider: provider(args),
  };
  if (bool(args, 'finetune')) {
    const train = dataArg(args, 'train-data');
    if (!train) throw new OtfuseError('BAD_USAGE', '--finetune needs --train-data');
    request.finetune = { data: train, evalData: request.evalData ?? request.data, epochs: num(args, 'epochs'), maxSteps: num(args, 'max-steps'), lr: num(args, 'lr'), batchSize: num(args, 'batch-size') };
  }
  const result = await engine.fuse(request, context);
  print(args, result, () => formatRun(result));
  return 0;
}

export function formatRun(result: FuseResult): string {
  const r: RunRecord = result.record;
  const rows = r.metrics.map((m) => [m.label, m.accuracy === undefined ? '—' : `${(m.accuracy * 100).toFixed(2)} %`, m.loss === undefined ? '—' : m.loss.toFixed(4)]);
  const table = rows.length ? formatTable(['model', 'accuracy', 'loss'], rows) : '(evaluation skipped)';
  const timings = Object.entries(r.timings).map(([stage, s]) => `  ${stage.padEnd(14)} ${s.toFixed(2)} s`).join('\n');
  const memory = r.peakRssBytes ? [`  ${'peak RSS'.padEnd(14)} ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GB`] : [];
  return [`run         ${result.runDir}`, `fused model ${r.fusedModel}`, `anchor      ${r.anchor}`, '', table, '', 'wall time per stage', timings, ...memory].join('\n');
}

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function cmdFinetune(args: ParsedArgs, context: JobContext): Promise<number> {
  rejectUnknown(args, known(...DATA_FLAGS, 'eval', 'eval-data', 'output', 'epochs', 'max-steps', 'lr', 'weight-decay', 'warmup-steps', 'label-smoothing', 'clip-norm', 'seed'));
  const model = requireOne(args, 'model');
  const data = dataArg(args);
  const output = str(args, 'output');
  if (!data) throw new OtfuseError('BAD_USAGE', 'finetune needs --data');
  if (!output) throw new OtfuseError('BAD_USAGE', 'finetune needs -o OUTPUT.onnx');
  const result = await engine.finetune({
    model, data, output,
    evalData: str(args, 'eval') ?? str(args, 'eval-data'),
    epochs: num(args, 'epochs'), maxSteps: num(args, 'max-steps'), lr: num(args, 'lr'), batchSize: num(args, 'batch-size'),
    weightDecay: num(args, 'weight-decay'), warmupSteps: num(args, 'warmup-steps'), labelSmoothing: num(args, 'label-smoothing'),
    clipNorm: num(args, 'clip-norm'), seed: num(args, 'seed'), provider: provider(args),
  }, context);
  print(args, result, () => {
    const evals = result.evals.map((e) => `  epoch ${e.epoch}: accuracy ${(e.accuracy * 100).toFixed(2)} %, loss ${e.loss.toFixed(4)}`).join('\n');
    const last = result.history[result.history.length - 1];
    return [`output      ${result.output}`, `steps       ${result.steps} (${result.epochs} epochs) in ${result.seconds.toFixed(1)} s, ${Math.round(result.samplesPerSecond)} samples/s`,
      `final loss  ${last ? last.loss.toFixed(4) : '—'}`, evals].filter(Boolean).join('\n');
  });
  return 0;
}

/** The README's main job: fuse the two bundled ViTs on the bundled data. */
async function cmdDemo(args: ParsedArgs, context: JobContext): Promise<number> {
  rejectUnknown(args, known('runs-dir'));
  const root = findExamples();
  const request: FuseRequest = {
    models: [path.join(root, 'vit48_s11.onnx'), path.join(root, 'vit48_s10.onnx')],
    data: path.join(root, 'calib200.npz'),
    evalData: path.join(root, 'data', 'fmnist-test-2k.json'),
    recipe: { name: 'demo' },
    runsDir: str(args, 'runs-dir'),
    provider: provider(args),
    // A quick finetune of the fused model on the bundled 5,000 training images (one epoch, a few seconds).
    finetune: { data: path.join(root, 'data', 'fmnist-train-5k.json'), epochs: 1 },
  };
  console.error(`otfuse demo: fusing ${path.basename(request.models[1])} onto the anchor ${path.basename(request.models[0])} (activations: calib200.npz; evaluation: 2,000 Fashion-MNIST test images; then one epoch of finetuning on 5,000 training images)`);
  const result = await engine.fuse(request, context);
  print(args, result, () => formatRun(result));
  return 0;
}

function findExamples(): string {
  for (const dir of [path.resolve('examples'), path.resolve(__dirname, '..', 'examples')]) {
    if (fs.existsSync(path.join(dir, 'vit48_s10.onnx'))) return dir;
  }
  throw new OtfuseError('BAD_USAGE', 'cannot find the bundled examples/ folder (run from the repository root)');
}

async function cmdProviders(args: ParsedArgs): Promise<number> {
  rejectUnknown(args, known());
  const report = await engine.providers(provider(args) ?? 'auto');
  print(args, report, () => [`used: ${report.used}`, ...report.reasons.map((r) => `  ${r}`)].join('\n'));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    const info = toErrorInfo(err);
    if (process.argv.includes('--json')) console.log(JSON.stringify({ error: info }, null, 2));
    console.error(`otfuse: error: ${info.message}`);
    if (info.code === 'INTERNAL' && err instanceof Error && err.stack) console.error(err.stack);
    process.exitCode = info.code === 'BAD_USAGE' ? 2 : 1;
  },
);
