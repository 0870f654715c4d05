// Shared pieces of the ONNX graphs built from HF checkpoints, shaped like a PyTorch export (opset 17): nn.Linear
// as MatMul(x, Transpose(W)) + Add(b) (W stays in HF's [out, in] layout under its HF key, so export maps
// initializers back by name), LayerNormalization, erf-GELU, multi-head attention with Reshape/Transpose head split.
import os from 'node:os';
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { OnnxModel } from '../onnx/model';
import { A, DT, makeTensor, toAttribute, type Attr } from '../train/builder';
import type { HfCheckpoint } from './checkpoint';
import type { HfActivation } from './config';
import { toFloat32, WEIGHT_DTYPES } from './safetensors';

export const OPSET = 17;
const LITTLE_ENDIAN = os.endianness() === 'LE';
/** HF's additive attention mask value: torch.finfo(torch.float32).min. */
export const MASK_MIN = -3.4028234663852886e38;

/** Tensors a checkpoint may carry that the architecture does not use — buffers, and the pooler / next-sentence
 * head of a pre-training checkpoint loaded as BertForMaskedLM (transformers ignores them too). Copied unchanged on
 * export. (A used tensor is never matched here: the builder places it first.) */
export const BUFFER_KEYS = [/(^|\.)embeddings\.position_ids$/, /^bert\.pooler\./, /^vit\.pooler\./, /^cls\.seq_relationship\./];

/** Older checkpoints name LayerNorm parameters gamma/beta (transformers renames them when loading). */
function legacyName(key: string): string | undefined {
  if (key.endsWith('LayerNorm.weight')) return key.replace(/weight$/, 'gamma');
  if (key.endsWith('LayerNorm.bias')) return key.replace(/bias$/, 'beta');
  return undefined;
}

export class HfGraph {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  /** Checkpoint keys placed in the graph (an initializer of the same name). */
  readonly used = new Set<string>();
  private readonly names = new Map<string, number>();
  private readonly consts = new Map<string, string>();

  /** `dry`: initializers get zero-filled (untouched, so not resident) data of the right size — for the structure
   * and key names only (export templates, checks of written folders). */
  constructor(
    readonly ckpt: HfCheckpoint,
    readonly dry = false,
  ) {}

  private unique(base: string): string {
    const n = this.names.get(base) ?? 0;
    this.names.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }

  /** One node named `${scope}/${op}`; its output is `${scope}/${op}_output_0` unless `out` is given. */
  op(scope: string, opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const name = this.unique(`${scope}/${opType}`);
    const output = out ?? `${name}_output_0`;
    this.nodes.push(
      onnx.NodeProto.create({ name, opType, input: inputs, output: [output], attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)) }),
    );
    return output;
  }

  /** A constant initializer (deduplicated). */
  constant(dataType: number, dims: number[], values: number[]): string {
    const key = `${dataType}|${dims}|${values}`;
    let name = this.consts.get(key);
    if (!name) {
      name = `onnx::Constant_${this.consts.size}`;
      this.initializers.push(makeTensor(name, dataType, dims, values));
      this.consts.set(key, name);
    }
    return name;
  }

  i64(values: number[]): string {
    return this.constant(DT.INT64, [values.length], values);
  }

  f32(value: number): string {
    return this.constant(DT.FLOAT, [], [value]);
  }

  /** A parameter from the checkpoint, as a float32 initializer named by its key; its shape is checked. */
  param(wanted: string, dims: number[]): string {
    const legacy = legacyName(wanted);
    const key = !this.ckpt.tensors.has(wanted) && legacy && this.ckpt.tensors.has(legacy) ? legacy : wanted;
    if (this.used.has(key)) return key;
    const e = this.ckpt.tensors.get(key);
    const where = this.ckpt.index ? 'the shards' : 'model.safetensors';
    if (!e)
      throw new OtfuseError('BAD_MODEL', `config.json describes a ${this.ckpt.config.architecture} but ${where} has no tensor '${key}'`, {
        file: this.ckpt.dir,
      });
    if (e.shape.join(',') !== dims.join(',')) {
      throw new OtfuseError('BAD_MODEL', `tensor '${key}' has shape [${e.shape}], config.json implies [${dims}]`, { file: e.file });
    }
    if (!WEIGHT_DTYPES.includes(e.dtype))
      throw new OtfuseError('UNSUPPORTED', `tensor '${key}' has dtype ${e.dtype}; model weights must be F32, F16 or BF16`, { file: e.file });
    let rawData: Uint8Array;
    if (this.dry) rawData = new Uint8Array(dims.reduce((a, b) => a * b, 1) * 4);
    else if (e.dtype === 'F32' && LITTLE_ENDIAN)
      rawData = e.bytes; // already float32 little-endian: no copy of the weights
    else {
      const data = toFloat32(e, e.file);
      rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    this.initializers.push(onnx.TensorProto.create({ name: key, dataType: DT.FLOAT, dims, rawData }));
    this.used.add(key);
    return key;
  }

  /** A tensor present in the checkpoint? */
  has(key: string): boolean {
    return this.ckpt.tensors.has(key);
  }

  input(name: string, elemType: number, shape: (number | string)[]): string {
    this.inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, shape: (number | string)[]): void {
    this.outputs.push(valueInfo(name, DT.FLOAT, shape));
  }

  /** nn.Linear: MatMul(x, Transpose(W[out, in])) [+ Add(b)]. `scope` is the module path, e.g. '/bert/pooler/dense'. */
  linear(scope: string, x: string, prefix: string, inDim: number, outDim: number, bias = true, out?: string, weightKey?: string): string {
    const w = this.param(weightKey ?? `${prefix}.weight`, [outDim, inDim]);
    const wt = this.op(scope, 'Transpose', [w], { perm: A.is([1, 0]) });
    const y = this.op(scope, 'MatMul', [x, wt], {}, bias ? undefined : out);
    if (!bias) return y;
    return this.op(scope, 'Add', [y, this.param(`${prefix}.bias`, [outDim])], {}, out);
  }

  layerNorm(scope: string, x: string, prefix: string, dim: number, eps: number): string {
    return this.op(scope, 'LayerNormalization', [x, this.param(`${prefix}.weight`, [dim]), this.param(`${prefix}.bias`, [dim])], {
      axis: A.i(-1),
      epsilon: A.f(eps),
    });
  }

  activation(scope: string, x: string, act: HfActivation): string {
    if (act === 'relu') return this.op(scope, 'Relu', [x]);
    // x · ½ (1 + erf(x / √2)), as torch.onnx exports nn.GELU() / F.gelu.
    const erf = this.op(scope, 'Erf', [this.op(scope, 'Div', [x, this.f32(Math.SQRT2)])]);
    return this.op(scope, 'Mul', [this.op(scope, 'Mul', [x, this.op(scope, 'Add', [erf, this.f32(1)])]), this.f32(0.5)]);
  }

  /** Self-attention with separate Q/K/V projections; `mask` is an additive [batch, 1, 1, tokens] term or undefined. */
  attention(scope: string, x: string, prefix: string, hidden: number, heads: number, bias: boolean, mask?: string): string {
    const hd = hidden / heads;
    const split = this.i64([0, 0, heads, hd]);
    const proj = (name: string) => this.linear(`${scope}/${name}`, x, `${prefix}.${name}`, hidden, hidden, bias);
    const q = this.op(scope, 'Transpose', [this.op(scope, 'Reshape', [proj('query'), split])], { perm: A.is([0, 2, 1, 3]) });
    const k = this.op(scope, 'Transpose', [this.op(scope, 'Reshape', [proj('key'), split])], { perm: A.is([0, 2, 3, 1]) });
    const v = this.op(scope, 'Transpose', [this.op(scope, 'Reshape', [proj('value'), split])], { perm: A.is([0, 2, 1, 3]) });
    let s = this.op(scope, 'Div', [this.op(scope, 'MatMul', [q, k]), this.f32(Math.sqrt(hd))]);
    if (mask) s = this.op(scope, 'Add', [s, mask]);
    const ctx = this.op(scope, 'MatMul', [this.op(scope, 'Softmax', [s], { axis: A.i(-1) }), v]);
    return this.op(scope, 'Reshape', [this.op(scope, 'Transpose', [ctx], { perm: A.is([0, 2, 1, 3]) }), this.i64([0, 0, hidden])]);
  }

  /** Every checkpoint tensor must be placed (or be a known buffer / tied copy): a stray key means a wrong architecture. */
  checkAllUsed(allowedExtra: (key: string) => boolean): void {
    for (const [key, e] of this.ckpt.tensors) {
      if (this.used.has(key) || allowedExtra(key) || BUFFER_KEYS.some((r) => r.test(key))) continue;
      throw new OtfuseError('BAD_MODEL', `tensor '${key}' is not part of a ${this.ckpt.config.architecture} as config.json describes it`, { file: e.file });
    }
  }

  model(name: string, metadata: Record<string, string>): OnnxModel {
    const proto = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'otfuse-hf-import',
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: OPSET }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: onnx.GraphProto.create({ name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs }),
    });
    return new OnnxModel(proto, this.ckpt.dir);
  }
}

function valueInfo(name: string, elemType: number, shape: (number | string)[]): onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
}
