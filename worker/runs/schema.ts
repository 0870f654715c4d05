// run.json's JSON Schema (the RunRecord in worker/types.ts): the types of every field a view or command reads.
// Unknown fields are allowed (a newer engine may add some); a known field of the wrong type makes the run unreadable,
// with ajv's message as the reason. `node scripts/gen-run-schema.mjs` writes it to worker/runs/run.schema.json.
import Ajv, { type ErrorObject } from 'ajv';
import { METRIC_ROLES } from './roles';

/** The format version this engine writes; records without one (or older) are migrated on read (migrate.ts). */
export const RUN_SCHEMA_VERSION = 2;

const str = { type: 'string' };
const int = { type: 'integer' };
const num = { type: 'number' };
/** A number, or null: JSON.stringify writes NaN and ±Infinity as null. */
const numOrNull = { type: ['number', 'null'] };
const strings = { type: 'array', items: str };
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', properties, required });

const dataRef = obj({ path: str, sha256: str, n: int }, ['path', 'sha256', 'n']);
const dataArg = { anyOf: [str, obj({ path: str, labels: str, limit: int, offset: int }, ['path'])] };
/** A partial model's trunk candidate at one K (run.json partial.candidates). */
const candidate = obj({ trunk: str, from: str, heldOutKl: num, heldOutAccuracy: num, residual: num }, ['trunk', 'heldOutKl']);
const accuracyLoss = obj({ epoch: num, accuracy: numOrNull, loss: numOrNull });

const metricRow = obj(
  {
    label: str,
    role: { enum: [...METRIC_ROLES] },
    start: { enum: ['fused', 'anchor', 'parent', 'vanilla'] },
    model: int,
    data: dataRef,
    file: str,
    accuracy: numOrNull,
    loss: numOrNull,
    perplexity: numOrNull,
    seeds: { type: 'array', items: numOrNull },
    sd: numOrNull,
  },
  ['label', 'role'],
);

const finetune = obj({
  output: str,
  steps: int,
  epochs: num,
  seconds: num,
  samplesPerSecond: numOrNull,
  history: { type: 'array', items: obj({ step: num, loss: numOrNull, lr: num }) },
  evals: { type: 'array', items: accuracyLoss },
  best: obj({ epoch: num, accuracy: numOrNull }),
  initial: obj({ accuracy: numOrNull, loss: numOrNull }),
  train: { type: 'array', items: accuracyLoss },
  peakRssMiB: num,
  distill: obj({ teachers: strings, temperature: num, alpha: num }),
  trainData: dataRef,
  evalData: dataRef,
  lr: num,
  seed: int,
  teachers: strings,
  at: str,
  rows: { type: 'array', items: metricRow },
});

const layer = obj({ name: str, kind: str, rows: int, cols: int, model: int, tensor: str, diagnostics: { type: 'object', additionalProperties: numOrNull } }, [
  'name',
  'kind',
  'rows',
  'cols',
  'model',
  'tensor',
]);

export function runSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://otfuse.dev/schema/run.schema.json',
    title: 'otfuse run record (run.json)',
    ...obj(
      {
        schemaVersion: int,
        id: str,
        name: str,
        status: { enum: ['running', 'done', 'failed', 'cancelled'] },
        createdAt: str,
        recipe: { type: 'object' },
        models: strings,
        anchor: str,
        fusedModel: str,
        versions: { type: 'object', additionalProperties: str },
        provider: obj({ used: str, requested: str, reasons: strings }),
        timings: { type: 'object', additionalProperties: numOrNull },
        metrics: { type: 'array', items: metricRow },
        layers: { type: 'array', items: layer },
        mapsFile: str,
        finetune,
        finetunes: { type: 'array', items: finetune },
        baselineFinetune: finetune,
        warnings: strings,
        error: obj({ code: str, message: str, file: str, node: str }, ['code', 'message']),
        autotune: { type: 'object' },
        anchorChoice: obj(
          {
            rule: str,
            heldOutSamples: int,
            chosen: str,
            parents: { type: 'array', items: obj({ model: str, loss: num, accuracy: num }, ['model', 'loss', 'accuracy']) },
            measuredOn: dataRef,
          },
          ['rule', 'heldOutSamples', 'chosen', 'parents'],
        ),
        data: dataArg,
        evalData: dataArg,
        refit: { type: 'array', items: { type: 'object' } },
        capture: { type: 'object' },
        peakRssBytes: num,
        evalIsCalibration: { type: 'boolean' },
        parents: { type: 'array', items: obj({ file: str, sha256: str }, ['file', 'sha256']) },
        maxLength: int,
        partial: obj(
          {
            mergeLayers: int,
            layers: int,
            parameters: int,
            parentParameters: int,
            points: {
              type: 'array',
              items: obj({ mergeLayers: int, parameters: int, accuracy: num, loss: num, trunk: str, candidates: { type: 'array', items: candidate } }, [
                'mergeLayers',
                'parameters',
              ]),
            },
            modelParameters: { type: 'array', items: int },
            trunk: str,
            candidates: { type: 'array', items: candidate },
            heldOut: obj({ fit: int, heldOut: int, refitOnAll: { type: 'boolean' } }, ['fit', 'heldOut']),
          },
          ['mergeLayers', 'layers', 'parameters', 'parentParameters'],
        ),
        merge: obj({ method: str, params: { type: 'object' }, base: str, formula: str, tensors: int, constants: int, colinear: int, hfOutput: str }, [
          'method',
          'params',
        ]),
        sharedBase: obj(
          {
            shared: { type: 'boolean' },
            message: str,
            base: str,
            baseName: str,
            maxRatio: numOrNull,
            medianRatio: numOrNull,
            worstTensor: str,
            tensors: int,
            threshold: num,
            medianThreshold: num,
            identityMaps: obj({ maps: int, identity: int }),
          },
          ['shared', 'message'],
        ),
      },
      ['id', 'name', 'status', 'createdAt', 'recipe', 'models', 'anchor', 'fusedModel', 'versions', 'timings', 'metrics', 'layers'],
    ),
  };
}

export function runSchemaText(): string {
  return JSON.stringify(runSchema(), null, 2) + '\n';
}

let compiled: ReturnType<Ajv['compile']> | undefined;

/** Why `record` does not fit the schema (the first error, with its place), or undefined when it does. */
export function runSchemaError(record: unknown): string | undefined {
  compiled ??= new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile(runSchema());
  if (compiled(record)) return undefined;
  const e = compiled.errors?.[0] as ErrorObject | undefined;
  if (!e) return 'does not fit the run.json schema';
  // The place is built from the file's own keys: bounded, so a hostile key cannot flood the view.
  const place = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'the record';
  const where = place.length > 120 ? `${place.slice(0, 117)}…` : place;
  return `${where} ${e.message ?? 'is invalid'}${e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : ''}`;
}
