// `otfuse`: a thin shell over the engine API (in-process). Exit codes: 0 ok, 1 failed, 2 bad usage.
import { mallocTunables, rerunWithTunables, watchRerunParent } from './runtime/malloc';
import path from 'node:path';
import { engine } from './api';
import { OtfuseError, toErrorInfo } from './errors';
import { exists } from './io/read';
import type { DataArg, DatasetSpec, FuseRecipe, FuseRequest, FuseResult, JobContext, RunRecord } from './types';
import { describeProvider, ProviderChoice } from './runtime/providers';
import { ParsedArgs, bool, num, numList, oneOf, parseArgs, rejectUnknown, str } from './cli/args';
import { ProgressBar } from './cli/progress';
import { demoVerdict } from './cli/verdict';
import { recipeFlags, recipeUsage, validateRecipe } from './fusion/recipe';
import { autotunes } from './fusion/presets';
import { readRegularFile } from './onnx/files';
import { refuseOutputOverInputs } from './io/outputs';
import { numberRanges } from './numbers';
import { finetuneFlags, finetuneOptionsFrom, finetuneUsage } from './cli/finetune';
import { addHfDataFlags, cmdExport, cmdImport, HF_DATA_FLAGS, HF_USAGE } from './cli/hf';
import { cmdMerge, MERGE_BOOLEANS, MERGE_USAGE_HEAD, MERGE_USAGE_TOKENS } from './merge/cli';

const VERSION = '0.1.0';
const PROVIDERS = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
const BOOLEANS = new Set(['json', 'help', 'alignment', 'version', 'finetune', 'force']);
// Only `fuse` has the boolean --no-eval; elsewhere --eval takes a dataset (finetune --eval EVAL).
const FUSE_BOOLEANS = new Set([
  ...BOOLEANS,
  'eval',
  'autotune',
  'baselines',
  ...recipeFlags()
    .filter((f) => f.spec.type === 'boolean')
    .map((f) => f.flag),
]);
const ALIASES: Record<string, string> = { o: 'output', h: 'help', j: 'json', v: 'version' };
const DATA_FLAGS = ['data', 'labels', 'mean', 'std', 'scale', 'limit', 'offset', ...HF_DATA_FLAGS];
const COMMON = ['json', 'help', 'provider', 'batch-size'];

/** Usage tokens joined into lines of at most `width` characters, each indented by `indent`. */
function wrapUsage(tokens: string[], indent: number, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const t of tokens) {
    if (line && indent + line.length + 1 + t.length > width) {
      lines.push(line);
      line = '';
    }
    line = line ? `${line} ${t}` : t;
  }
  if (line) lines.push(line);
  return lines.map((l) => ' '.repeat(indent) + l).join('\n');
}

const USAGE = `otfuse ${VERSION} — fuse transformer checkpoints (ONNX) with optimal transport

Usage:
  otfuse eval MODEL --data DATA [--limit N] [--batch-size N]
  otfuse inspect MODEL [--alignment]
  otfuse fuse A.onnx B.onnx [C.onnx …] --data DATA [--anchor B.onnx|auto] [-o fused.onnx] [--recipe r.json]
${wrapUsage([...recipeUsage(), '[--eval-data DATA]', '[--eval-limit N]', '[--no-eval]', '[--runs-dir DIR]', '[--finetune --train-data DATA', ...finetuneUsage('fuse', false), '[--teacher A.onnx …', ...finetuneUsage('fuse', true).map((t, i, all) => (i === all.length - 1 ? `${t}]]` : t)), '[--baselines]', '[--no-autotune]', '[--autotune-budget 30]'], 9, 118)}
         With no recipe flag, fuse auto-tunes the recipe: a budgeted sweep scored on a held-out slice of --data
         (the budget is in seconds estimated from the model's size, so the same inputs give the same recipe anywhere).
  otfuse finetune MODEL --data TRAIN [--eval EVAL] -o out.onnx
${wrapUsage(finetuneUsage('finetune', false), 9, 118)}
         [--teacher A.onnx --teacher B.onnx ${finetuneUsage('finetune', true).join(' ')}]   (distillation from teachers)
${HF_USAGE}
${MERGE_USAGE_HEAD}
${wrapUsage(MERGE_USAGE_TOKENS, 9, 118)}
  otfuse demo [--pair noniid|converged] [--seeds 3]
                       fuse a bundled ViT pair (auto-tuned; default: parents trained on different class-skewed
                       data), give it, both parents and vanilla the same short distillation finetune, and print
                       them next to the parents' ensemble
  otfuse providers     which execution provider runs, and why the others do not

MODEL may also be a Hugging Face folder (config.json + model.safetensors) or its model.safetensors.
DATA is a .npz (x float32 + y int labels, or arrays named after the model inputs + y), a JSON dataset spec,
or IDX images with --labels FILE --mean M --std S [--scale 255], a .jsonl/.csv with text,label [--tokenizer HF_DIR]
[--max-length N], or an image folder (one sub-folder per class) [--preprocessor HF_DIR]; by default text and images
take the tokenizer / preprocessor_config.json of a Hugging Face model folder among the models. --tokenizer,
--max-length and --preprocessor apply to every data set of the command; text is cut at the tokenizer's
model_max_length unless --max-length says otherwise (as transformers does).
Training data that is the evaluation data (same file or same content) is refused (exit 2).
Common options: --provider auto|cpu|cuda|webgpu (default auto), --json (machine-readable output on stdout).
Ranges of the numeric options (outside them: exit 2 before any work; ℤ = integer):
${wrapUsage(numberRanges(), 2, 118)}
Exit codes: 0 ok, 1 failed, 2 bad usage.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-v') {
    console.log(VERSION);
    return 0;
  }
  const args = parseArgs(rest, command === 'fuse' ? FUSE_BOOLEANS : command === 'merge' ? new Set([...BOOLEANS, ...MERGE_BOOLEANS]) : BOOLEANS, ALIASES);
  if (bool(args, 'help')) {
    console.log(USAGE);
    return 0;
  }
  // A job that wants other malloc settings than this process started with runs in a child started with them.
  if (command === 'finetune' && process.env.GLIBC_TUNABLES === undefined) {
    const tunables = mallocTunables('finetune');
    if (tunables) return await rerunWithTunables(tunables);
  }
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    if (++interrupts > 1) process.exit(130);
    process.stderr.write('\notfuse: cancelling (Ctrl-C again to quit at once)…\n');
    controller.abort();
  });
  watchRerunParent(() => controller.abort());
  const context: JobContext = { signal: controller.signal, onProgress: (e) => bar.update(e) };
  try {
    switch (command) {
      case 'eval':
        return await cmdEval(args, context);
      case 'inspect':
        return await cmdInspect(args);
      case 'fuse':
        return await cmdFuse(args, context);
      case 'finetune':
        return await cmdFinetune(args, context);
      case 'demo':
        return await cmdDemo(args, context);
      case 'providers':
        return await cmdProviders(args);
      case 'import':
        return await cmdImport(args, print);
      case 'export':
        return await cmdExport(args, print);
      case 'merge':
        return await cmdMerge(args, print, formatTable, { known, provider: provider(args) }, context);
      default:
        throw new OtfuseError('BAD_USAGE', `unknown command '${command}' (try otfuse --help)`);
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
  // Preprocessing and windowing flags apply to the main --data only; the tokenizer, --max-length and the
  // preprocessor describe the model's inputs, so they apply to every data set of the command (calibration,
  // evaluation, training).
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
  addHfDataFlags(args, spec);
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
  print(args, result, () =>
    [
      `model     ${model}`,
      `samples   ${result.samples}`,
      ...(result.perplexity !== undefined ? [`perplexity ${result.perplexity.toFixed(3)} (lower is better)`] : []),
      `accuracy  ${(result.accuracy * 100).toFixed(2)} %${result.perplexity !== undefined ? ' (next token)' : ''}`,
      `loss      ${result.loss.toFixed(4)}`,
      `time      ${result.seconds.toFixed(2)} s (${Math.round(result.samples / Math.max(result.seconds, 1e-9))} samples/s)`,
      describeProvider(result.provider),
    ].join('\n'),
  );
  return 0;
}

async function cmdInspect(args: ParsedArgs): Promise<number> {
  rejectUnknown(args, known('alignment'));
  const model = requireOne(args, 'model');
  const result = await engine.inspect({ model, alignment: bool(args, 'alignment'), provider: provider(args) });
  print(args, result, () => {
    const s = result.summary;
    const io = (list: typeof s.inputs) => list.map((v) => `  ${v.name}: ${v.type} [${v.shape.join(', ')}]`).join('\n');
    const ops = Object.entries(s.opHistogram)
      .sort((a, b) => b[1] - a[1])
      .map(([op, n]) => `${op} ${n}`)
      .join(', ');
    const lines = [
      `model       ${s.file}`,
      `producer    ${s.producer || '?'} (IR ${s.irVersion}, opset ${Object.entries(s.opsets)
        .map(([d, v]) => `${d} ${v}`)
        .join(', ')})`,
      `parameters  ${s.parameterCount.toLocaleString('en-US')} in ${s.initializerCount} initializers`,
      `nodes       ${s.nodeCount}`,
      `inputs\n${io(s.inputs)}`,
      `outputs\n${io(s.outputs)}`,
      `ops         ${ops}`,
      ...(result.provider ? [describeProvider(result.provider)] : []),
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
      recipe = JSON.parse(Buffer.from(readRegularFile(file, 'BAD_USAGE', 'recipe', 1 << 20)).toString('utf8')) as FuseRecipe;
    } catch (err) {
      throw new OtfuseError('BAD_USAGE', `cannot read recipe: ${(err as Error).message}`, { file });
    }
    recipe = validateRecipe(recipe, file);
  }
  // Every recipe flag (and its allowed values) comes from RECIPE_FIELDS; flags override the file's fields.
  const out = recipe as Record<string, unknown>;
  for (const { flag, field, spec } of recipeFlags()) {
    let value: unknown;
    switch (spec.type) {
      case 'enum':
        value = oneOf(args, flag, spec.values);
        break;
      case 'number':
        value = num(args, flag);
        break;
      case 'boolean':
        value = bool(args, flag);
        break;
      case 'numberArray':
        value = numList(args, flag);
        break;
      case 'string':
        value = str(args, flag);
        break;
    }
    if (value !== undefined) out[field] = value;
  }
  if (Object.keys(out).length) validateRecipe(out);
  return recipe;
}

const FUSE_FLAGS = [
  'anchor',
  'output',
  'recipe',
  ...recipeFlags().map((f) => f.flag),
  'eval-data',
  'eval-limit',
  'eval',
  'runs-dir',
  'finetune',
  'train-data',
  ...finetuneFlags('fuse'),
  'autotune',
  'autotune-budget',
  'baselines',
  'teacher',
];

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
    baselines: bool(args, 'baselines'),
  };
  // No recipe flag and no --recipe file: the recipe is auto-tuned (--no-autotune keeps the plain defaults).
  const budget = num(args, 'autotune-budget');
  if (bool(args, 'autotune') !== false && (autotunes(request.recipe) || bool(args, 'autotune') === true) && request.data !== undefined) {
    request.autotune = budget !== undefined ? { budgetSeconds: budget } : true;
  } else if (budget !== undefined)
    throw new OtfuseError('BAD_USAGE', '--autotune-budget applies only when the recipe is auto-tuned (no recipe flags, or --autotune)');
  if (bool(args, 'finetune')) {
    const train = dataArg(args, 'train-data');
    if (!train) throw new OtfuseError('BAD_USAGE', '--finetune needs --train-data');
    request.finetune = { data: train, evalData: request.evalData ?? request.data, ...finetuneOptionsFrom(args, 'fuse') };
  }
  // The recipe file is read here, not by the engine: -o must not be it either (the engine checks the other inputs).
  const recipeFile = str(args, 'recipe');
  if (recipeFile && request.output) refuseOutputOverInputs([{ path: request.output }], [{ path: recipeFile, what: 'recipe' }]);
  const result = await engine.fuse(request, context);
  print(args, result, () => formatRun(result));
  return 0;
}

export function formatRun(result: FuseResult): string {
  const r: RunRecord = result.record;
  const rows = r.metrics.map((m) => [
    m.label,
    m.accuracy === undefined ? '—' : `${(m.accuracy * 100).toFixed(2)} %${m.sd !== undefined ? ` ± ${(m.sd * 100).toFixed(2)}` : ''}`,
    m.loss === undefined ? '—' : m.loss.toFixed(4),
  ]);
  // Causal LMs: perplexity first (lower is better), accuracy is next-token accuracy.
  const lm = r.metrics.some((m) => m.perplexity !== undefined);
  if (lm) rows.forEach((row, i) => row.splice(1, 0, r.metrics[i].perplexity === undefined ? '—' : r.metrics[i].perplexity!.toFixed(3)));
  const header = lm ? ['model', 'perplexity (lower is better)', 'next-token accuracy', 'loss'] : ['model', 'accuracy', 'loss'];
  let table = rows.length ? formatTable(header, rows) : '(evaluation skipped)';
  // Without --eval-data the numbers were measured on the calibration data itself: say so, they are no result.
  if (rows.length && r.evalIsCalibration) table = `measured on the CALIBRATION data (no separate --eval-data): not a held-out result\n${table}`;
  // Which data the rows were measured on, by name, N and content hash (run.json has each row's own).
  const on = r.metrics.find((m) => m.data)?.data;
  if (on) table = `${table}\nmeasured on ${path.basename(on.path)}: N = ${on.n}, sha256 ${on.sha256.slice(0, 12)}…`;
  const timings = Object.entries(r.timings)
    .map(([stage, s]) => `  ${stage.padEnd(14)} ${s.toFixed(2)} s`)
    .join('\n');
  const memory = r.peakRssBytes ? [`  ${'peak RSS'.padEnd(14)} ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GB`] : [];
  const warnings = (r.warnings ?? []).map((w) => `warning: ${w}`);
  // Same-base parents (worker/merge/sharedBase.ts): alignment is the identity; `otfuse merge` is the tool.
  if (r.sharedBase?.shared)
    warnings.push(
      `${r.sharedBase.message}${r.sharedBase.identityMaps ? ` (OT found the identity for ${r.sharedBase.identityMaps.identity} of ${r.sharedBase.identityMaps.maps} maps)` : ''}${r.sharedBase.base ? ` (base: ${r.sharedBase.base})` : r.sharedBase.baseName ? ` (the config names '${r.sharedBase.baseName}' as the base; not found here: give it to 'otfuse merge --base')` : " (give the base to 'otfuse merge --base')"}`,
    );
  const tuned = r.autotune
    ? [
        '',
        r.autotune.trials.some((t) => !t.skipped)
          ? `recipe      auto-tuned in ${r.autotune.seconds.toFixed(1)} s: ${r.autotune.chosenLabel} (held-out ${r.autotune.heldOutSamples} calibration samples; ${r.autotune.trials.filter((t) => !t.skipped).length} of ${r.autotune.trials.length} recipes tried)`
          : `recipe      ${r.autotune.chosenLabel}, not auto-tuned (${r.autotune.trials[0]?.skipped ?? 'no trial fitted the budget'})`,
        ...(r.autotune.guard ? [`warning     auto-tune: ${r.autotune.guard}`] : []),
      ]
    : [];
  return [
    `run         ${result.runDir}`,
    `fused model ${r.fusedModel}`,
    `anchor      ${r.anchor}`,
    ...(r.anchorChoice
      ? [
          `            chosen automatically: ${r.anchorChoice.rule}: ${r.anchorChoice.parents
            .map((p) => `${path.basename(p.model)} ${(p.accuracy * 100).toFixed(1)} % / loss ${p.loss.toFixed(3)}`)
            .join(', ')}${r.anchorChoice.measuredOn ? ` (sha256 ${r.anchorChoice.measuredOn.sha256.slice(0, 12)}…)` : ''}`,
        ]
      : []),
    ...tuned,
    ...(warnings.length ? ['', ...warnings] : []),
    '',
    table,
    ...partialLines(r),
    '',
    'wall time per stage',
    timings,
    ...memory,
  ].join('\n');
}

/** Partial fusion (--merge-layers, --pareto): the chosen K and the accuracy-vs-size curve. */
function partialLines(r: RunRecord): string[] {
  const p = r.partial;
  if (!p) return [];
  const trunk = p.trunk ? `; trunk: ${p.trunk} (chosen on ${p.heldOut?.heldOut ?? '?'} held-out calibration samples)` : '';
  const head = `partial fusion: ${p.mergeLayers} of ${p.layers} blocks shared, ${p.parameters} parameters (one parent: ${p.parentParameters})${trunk}`;
  if (!p.points) return ['', head];
  const rows = p.points.map((q) => [
    `${q.mergeLayers}${q.mergeLayers === p.mergeLayers ? ' (chosen)' : ''}`,
    String(q.parameters),
    `${(q.parameters / p.parentParameters).toFixed(2)}×`,
    q.accuracy === undefined ? '—' : `${(q.accuracy * 100).toFixed(2)} %`,
    q.trunk ?? '',
  ]);
  return ['', head, formatTable(['K', 'parameters', 'size', 'accuracy', 'trunk'], rows)];
}

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function cmdFinetune(args: ParsedArgs, context: JobContext): Promise<number> {
  rejectUnknown(args, known(...DATA_FLAGS, 'eval', 'eval-data', 'output', 'teacher', ...finetuneFlags('finetune')));
  const options = finetuneOptionsFrom(args, 'finetune');
  const model = requireOne(args, 'model');
  const data = dataArg(args);
  const output = str(args, 'output');
  if (!data) throw new OtfuseError('BAD_USAGE', 'finetune needs --data');
  if (!output) throw new OtfuseError('BAD_USAGE', 'finetune needs -o OUTPUT.onnx');
  const result = await engine.finetune(
    {
      model,
      data,
      output,
      evalData: dataArg(args, 'eval') ?? dataArg(args, 'eval-data'),
      ...options,
      provider: provider(args),
    },
    context,
  );
  print(args, result, () => {
    const evals = result.evals.map((e) => `  epoch ${e.epoch}: accuracy ${(e.accuracy * 100).toFixed(2)} %, loss ${e.loss.toFixed(4)}`).join('\n');
    const last = result.history[result.history.length - 1];
    const kd = result.distill
      ? `distilled   from ${result.distill.teachers.map((t) => path.basename(t)).join(', ')} (T ${result.distill.temperature}, α ${result.distill.alpha})`
      : '';
    const t = result.trunkDistill;
    const trunk = t
      ? t.skipped
        ? `trunk       distillation skipped: ${t.skipped}`
        : `trunk       distilled ${t.epochs} epochs (partial model: mean squared error at the cut ${t.mse[0].toPrecision(3)} → ${t.mse[t.mse.length - 1].toPrecision(3)}, ${t.seconds.toFixed(1)} s)`
      : '';
    return [
      `output      ${result.output}`,
      kd,
      trunk,
      `steps       ${result.steps} (${result.epochs} epochs) in ${result.seconds.toFixed(1)} s, ${Math.round(result.samplesPerSecond)} samples/s`,
      `final loss  ${last ? last.loss.toFixed(4) : '—'}`,
      evals,
    ]
      .filter(Boolean)
      .join('\n');
  });
  return 0;
}

/** The demo's bundled pairs (paths relative to examples/): the default shows fusion where it is meant to pay. */
const DEMO_PAIRS = {
  // Parents trained on class-skewed shards (bench/quality/make_noniid.py; scripts/fixtures/export_noniid_demo.py):
  // the scenario's own balanced calibration and shared finetune sets, disjoint from both parents' training data.
  noniid: {
    models: ['noniid/noniid_pair_a.onnx', 'noniid/noniid_pair_b.onnx'],
    calib: 'noniid/calib200.json',
    train: 'noniid/shared-2k.json',
    what: 'two ViTs trained on different class-skewed shards (A: 95 % classes 0–4, B: 95 % classes 5–9)',
    trainWhat: '2,000 shared balanced training images',
  },
  converged: {
    models: ['vit48c_s20.onnx', 'vit48c_s21.onnx'],
    calib: 'calib200.npz',
    train: 'data/fmnist-train-5k.json',
    what: 'two converged ViTs trained on the same data from different seeds',
    trainWhat: '5,000 training images',
  },
} as const;
export type DemoPair = keyof typeof DEMO_PAIRS;

/**
 * The README's main job: fuse a bundled ViT pair (auto-tuned recipe; by default the non-IID pair, `--pair converged`
 * for the converged one), then give the fused model, both parents and the vanilla average the SAME short finetune
 * (distillation from the parents) over several seeds, and print them next to the parents' logit ensemble —
 * including where fusion still loses.
 */
async function cmdDemo(args: ParsedArgs, context: JobContext): Promise<number> {
  rejectUnknown(args, known('runs-dir', 'seeds', 'autotune-budget', 'pair'));
  const root = findExamples();
  const which = (str(args, 'pair') ?? 'noniid') as DemoPair;
  if (!(which in DEMO_PAIRS)) throw new OtfuseError('BAD_USAGE', `--pair must be one of ${Object.keys(DEMO_PAIRS).join(', ')} (got '${which}')`);
  const demo = DEMO_PAIRS[which];
  const pair = demo.models.map((f) => path.join(root, f));
  const missing = [...pair, path.join(root, demo.calib), path.join(root, demo.train)].find((f) => !exists(f));
  if (missing) throw new OtfuseError('IO', `the demo's ${which} pair is incomplete: ${missing} is missing`, { file: missing });
  const seeds = num(args, 'seeds') ?? 3;
  const calib = path.join(root, demo.calib);
  const request: FuseRequest = {
    models: pair,
    data: calib,
    evalData: path.join(root, 'data', 'fmnist-test-2k.json'),
    recipe: { name: `demo-${which}` },
    autotune: { budgetSeconds: num(args, 'autotune-budget') ?? 20 },
    baselines: { seeds },
    runsDir: str(args, 'runs-dir'),
    provider: provider(args),
    // One epoch on the pair's training set with the parents as teachers; the last checkpoint is kept (nothing is
    // selected on the test images).
    finetune: { data: path.join(root, demo.train), epochs: 1, teachers: pair, keep: 'last', evalData: calib },
  };
  console.error(
    `otfuse demo (${which}): ${demo.what}; fusing ${path.basename(pair[1])} onto ${path.basename(pair[0])} (recipe auto-tuned on ${path.basename(demo.calib)}; evaluation: 2,000 Fashion-MNIST test images), then the same finetune (1 epoch on ${demo.trainWhat}, distillation from both parents) for the fused model, each parent and the vanilla average, ${seeds} seed${seeds > 1 ? 's' : ''} each`,
  );
  const result = await engine.fuse(request, context);
  print(args, result, () => `${formatRun(result)}\n\n${demoVerdict(result.record)}`);
  return 0;
}

function findExamples(): string {
  for (const dir of [path.resolve('examples'), path.resolve(__dirname, '..', 'examples')]) {
    if (exists(path.join(dir, 'vit48_s10.onnx'))) return dir;
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
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    const info = toErrorInfo(err);
    if (process.argv.includes('--json')) console.log(JSON.stringify({ error: info }, null, 2));
    console.error(`otfuse: error: ${info.message}`);
    if (process.env.OTFUSE_DEBUG === '1' && err instanceof Error && err.stack) console.error(err.stack);
    else if (info.code === 'INTERNAL') console.error('otfuse: this looks like a bug; run with OTFUSE_DEBUG=1 for a stack trace and report it');
    process.exitCode = info.code === 'BAD_USAGE' ? 2 : 1;
  },
);
