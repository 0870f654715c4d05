// The state one alignment walks the schedule with (one other model onto the anchor): the map slots, the sink of
// aligned parameters, and the operations every step handler shares — a cost and an OT map between two sets of
// neurons (recorded with its diagnostics), a linear layer's input side moved by the incoming map and its output
// side by a new one, and the residual policy's combination of two maps.
import { OtfuseError } from '../../errors';
import { solveOTAsync, pickSolverParams, uniform, diagnose } from '../../ot/index';
import { RESIDUAL_POLICIES } from '../registry';
import type { LinearRef, ModelPlan } from '../../graph/analyze';
import type { Slot } from '../schedule';
import type { ActivationStore } from '../activations';
import type { ResolvedRecipe } from '../recipe';
import { ParamSink, biasRegion, readBias, readWeight, toStorage, weightRegion, type Region } from '../slices';
import type { Params } from '../../onnx/params';
import { TMap, alignInput, alignOutput, alignVector } from '../maps';
import type { CostEngine } from '../cost';
import type { OrtProvider } from '../../ot/index';
import { ALIGN_BY_STRATEGIES, type Features, type NeuronSource } from './features';

export interface MapRecord {
  name: string;
  kind: string;
  map: TMap;
  diagnostics: Record<string, number>;
}

export interface AlignContext {
  anchor: { plan: ModelPlan; params: Params; acts?: ActivationStore };
  other: { plan: ModelPlan; params: Params; acts?: ActivationStore };
  recipe: ResolvedRecipe;
  costs: CostEngine;
  onMap?: (record: MapRecord) => void;
  /** Called before each stage reads activations (0 = embedding, 1…L = blocks, L+1 = head): staged capture. */
  prepare?: (stage: number) => Promise<void>;
  /** Run OT solvers that have an ONNX Runtime path there, on this provider (undefined: the JS solvers). */
  otProvider?: OrtProvider;
  /** Called for every anchor linear layer with the map its input side takes from this model (null: none). */
  onLinear?: (anchor: LinearRef, mapIn: TMap | null) => void;
  /** Replace a named map after solving (tests use it to break one axis on purpose). */
  tamper?: (name: string, map: TMap) => TMap;
}

/** One model's side of the alignment. */
export interface Side {
  plan: ModelPlan;
  params: Params;
  acts?: ActivationStore;
}

export interface TransportResult {
  plan: Float64Array;
  iterations: number;
  converged: boolean;
  ort: boolean;
}

export class Aligner {
  readonly A: Side;
  readonly B: Side;
  readonly recipe: ResolvedRecipe;
  readonly sink: ParamSink;
  private readonly slots = new Map<Slot, TMap | null>();
  private readonly solverParams: Record<string, unknown>;

  constructor(
    readonly ctx: AlignContext,
    sink: ParamSink,
  ) {
    this.A = ctx.anchor;
    this.B = ctx.other;
    this.recipe = ctx.recipe;
    this.sink = sink;
    this.solverParams = pickSolverParams(this.recipe.solver, this.recipe as unknown as Record<string, unknown>);
  }

  /** A MISMATCH error naming the other model's file. */
  mismatch(message: string, node?: string): OtfuseError {
    return new OtfuseError('MISMATCH', message, node ? { file: this.B.plan.file, node } : { file: this.B.plan.file });
  }

  put(name: string, v: Float64Array, region?: Region): void {
    this.sink.put(name, v, region);
  }

  // ---- map slots ----
  setSlot(name: Slot, map: TMap | null): void {
    this.slots.set(name, map);
  }
  slot(name: Slot): TMap | null {
    const v = this.slots.get(name);
    if (v === undefined) throw new OtfuseError('INTERNAL', `alignment schedule: map slot '${name}' read before it is written`);
    return v;
  }
  mapOf(name: Slot): TMap {
    const v = this.slot(name);
    if (!v) throw new OtfuseError('INTERNAL', `alignment schedule: map slot '${name}' holds no map`);
    return v;
  }

  // ---- costs and maps ----
  costOf(f: Features) {
    return this.ctx.costs.cost(f.X, f.Y, f.n, f.m, f.d, { metric: this.recipe.groundMetric, normalize: this.recipe.costNorm });
  }

  /** OT with uniform marginals on a cost matrix (plan with total mass 1). */
  async transport(M: Float64Array, n: number, m: number): Promise<TransportResult> {
    const C = this.recipe.float32Cost ? Float32Array.from(M) : M;
    const res = await solveOTAsync(uniform(n), uniform(m), C, { solver: this.recipe.solver, ...this.solverParams }, this.ctx.otProvider);
    return { plan: res.plan, iterations: res.iterations, converged: res.converged, ort: 'backend' in res && res.backend === 'ort' };
  }

  /** Hands a solved map (after the test hook) to the caller's onMap with its diagnostics against cost M. */
  record(name: string, kind: string, solved: TMap, M: Float64Array, t0: number, extra: Record<string, number>): TMap {
    const map = this.ctx.tamper ? this.ctx.tamper(name, solved) : solved;
    const d = diagnose(map.plan, map.n, map.m, M, 1);
    const diagnostics: Record<string, number> = {
      cost: d.cost ?? NaN,
      entropy: d.entropy,
      meanBestMatch: d.meanBestMatch,
      hardness: d.hardness,
      ms: performance.now() - t0,
      ...extra,
    };
    if (Number.isFinite(d.frobeniusToPermutation)) diagnostics.frobeniusToPermutation = d.frobeniusToPermutation;
    this.ctx.onMap?.({ name, kind, map, diagnostics });
    return map;
  }

  /** Cost, OT and record: the map between the neurons `f` describes. */
  async solve(name: string, kind: string, f: Features): Promise<TMap> {
    const t0 = performance.now();
    const gm = await this.costOf(f);
    const res = await this.transport(gm.cost, f.n, f.m);
    return this.record(name, kind, { plan: res.plan, n: f.n, m: f.m }, gm.cost, t0, {
      iterations: res.iterations,
      converged: res.converged ? 1 : 0,
      costScale: gm.scale,
      ...(res.ort ? { onnxRuntime: 1 } : {}),
    });
  }

  /** The residual policy's map after an Add of a skip path and a branch. */
  residual(name: string, skip: TMap, branch: TMap, skipAbs: () => Float64Array, branchAbs: () => Float64Array): TMap {
    const map = RESIDUAL_POLICIES[this.recipe.residualPolicy].combine({ skip, branch, skipAbs, branchAbs });
    this.ctx.onMap?.({ name, kind: 'residual', map, diagnostics: {} });
    return map;
  }

  // ---- features ----
  /** Features by the recipe's align-by strategy. */
  features(source: NeuronSource): Features {
    return ALIGN_BY_STRATEGIES[this.recipe.alignBy].features((other, anchor) => this.actFeatures(other, anchor), source);
  }

  /** Activations of one tensor in each model: the same calibration tokens, so the same sample count. */
  actFeatures(tensorB: string, tensorA: string): Features {
    const x = actsOf(this.B, tensorB),
      y = actsOf(this.A, tensorA);
    if (x.samples !== y.samples) throw this.mismatch(`activation sample counts differ (${x.samples} vs ${y.samples}): the models do not see the same tokens`);
    return { X: x.X, Y: y.X, n: x.neurons, m: y.neurons, d: x.samples };
  }

  /** Mean |activation| per neuron of an anchor tensor (weighted residual policies). */
  absOf(tensor: string): () => Float64Array {
    return () => {
      if (!this.A.acts) throw new OtfuseError('BAD_USAGE', `residual policy '${this.recipe.residualPolicy}' needs activations (give --data)`);
      return this.A.acts.absMean(tensor);
    };
  }

  // ---- linear layers ----
  /** Canonical [out, in] weight of a layer. */
  weightOf(side: Side, l: LinearRef): Float64Array {
    return readWeight(side.params.get(l.weight), l);
  }
  biasOf(side: Side, l: LinearRef): Float64Array | undefined {
    return l.bias ? readBias(side.params.get(l.bias), l) : undefined;
  }
  /** Writes an aligned layer in the anchor's layout (through its slice when packed). */
  putLinear(la: LinearRef, W: Float64Array, b: Float64Array | undefined): void {
    this.put(la.weight, toStorage(W, la), weightRegion(la, this.A.params.get(la.weight).dims));
    if (la.bias) {
      if (!b) throw this.mismatch(`layer '${la.node}' has a bias in the anchor but not in ${this.B.plan.file}`);
      this.put(la.bias, b, biasRegion(la, this.A.params.get(la.bias).data.length));
    }
  }
  /** The other model's weight with its input side moved by the incoming map. */
  inAligned(lb: LinearRef, la: LinearRef, mapIn: TMap | null): Float64Array {
    this.ctx.onLinear?.(la, mapIn);
    const W = this.weightOf(this.B, lb);
    const r = alignInput(W, lb.outDim, mapIn, lb.inDim);
    if (r.inDim !== la.inDim) throw this.mismatch(`layer '${lb.node}' takes ${r.inDim} inputs after alignment, the anchor's '${la.node}' takes ${la.inDim}`);
    return r.W;
  }
  mapBias(b: Float64Array | undefined, map: TMap): Float64Array | undefined {
    return b ? alignVector(b, map, this.recipe.outNorm) : undefined;
  }
  /** One aligned layer: input side, map, output side. Returns the layer's map. */
  async linear(name: string, kind: string, lb: LinearRef, la: LinearRef, mapIn: TMap | null): Promise<TMap> {
    const W = this.inAligned(lb, la, mapIn);
    const map = await this.solve(name, kind, this.features(this.layerSource(lb, la, W)));
    this.putLinear(la, alignOutput(W, la.inDim, map, this.recipe.outNorm), this.mapBias(this.biasOf(this.B, lb), map));
    return map;
  }
  /** A layer's output neurons: its output activations, or its rows (the other's already input-aligned: W). */
  layerSource(lb: LinearRef, la: LinearRef, W: Float64Array): NeuronSource {
    return { acts: [[lb.out, la.out]], weights: () => ({ B: W, n: lb.outDim, A: this.weightOf(this.A, la), m: la.outDim, d: la.inDim }) };
  }
}

function actsOf(side: Side, tensor: string) {
  if (!side.acts) throw new OtfuseError('INTERNAL', 'activation-based alignment without activations');
  return side.acts.get(tensor);
}
