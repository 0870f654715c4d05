// Exact optimal transport (earth mover's distance) between discrete measures.
// - square problem with uniform marginals: linear assignment (Jonker–Volgenant), plan = permutation · mass;
// - anything else: a primal network simplex on the bipartite transportation network with an artificial root
//   (big-M start), block-search pricing (in WebAssembly SIMD from 1,024 arcs, pricing-wasm.ts) and a strongly
//   feasible spanning tree (no cycling on degenerate pivots).
import { OtfuseError } from '../errors';
import { linearAssignment } from './lap';
import { pricingFor } from './pricing-wasm';
import { checkProblem, type PlanResult, type Weights } from './validate';

/** Arcs from which the network simplex prices in WebAssembly SIMD (below, plain JS: the kernel's set-up costs more;
 * tests set it to Infinity to compare both). */
export const emdEngine = { wasmPricingMin: 1024 };

export interface EmdOptions {
  /** Use the assignment fast path for square uniform problems (default true). */
  assignment?: boolean;
  /** Pivot limit for the network simplex (default 50·(n+m)² capped at 1e8). */
  maxIter?: number;
}

export interface EmdResult extends PlanResult {
  method: 'assignment' | 'network-simplex';
  /** Pivots (network simplex) or augmentations (assignment). */
  iterations: number;
  /** For square uniform problems: rowToCol[i] = matched column. */
  permutation?: Int32Array;
}

function isUniform(x: Float64Array): boolean {
  const first = x[0];
  for (let i = 1; i < x.length; i++) if (Math.abs(x[i] - first) > 1e-12 * first) return false;
  return true;
}

export function emd(aIn: Weights, bIn: Weights, MIn: Float64Array | Float32Array, options: EmdOptions = {}): EmdResult {
  const { a, b: bRaw, M, n, m, sumA, sumB } = checkProblem(aIn, bIn, MIn, 'EMD');
  // as POT: rescale b onto a's total mass so the network is balanced
  const b = sumA === sumB ? bRaw : bRaw.map((x) => (x * sumA) / sumB);

  if (n === m && options.assignment !== false && isUniform(a) && isUniform(b)) {
    const res = linearAssignment(M, n);
    const plan = new Float64Array(n * m);
    const w = sumA / n;
    let cost = 0;
    for (let i = 0; i < n; i++) {
      const j = res.rowToCol[i];
      plan[i * m + j] = w;
      cost += M[i * m + j] * w;
    }
    return { plan, n, m, cost, method: 'assignment', iterations: n, converged: true, permutation: res.rowToCol };
  }
  return networkSimplex(a, b, M, n, m, options.maxIter);
}

/** Transportation problem by network simplex. a, b > 0 entries are solved; zero entries get zero rows/cols. */
export function networkSimplex(a: Float64Array, b: Float64Array, M: Float64Array, n: number, m: number, maxIter?: number): EmdResult {
  // Drop zero-mass rows and columns.
  const rows: number[] = [],
    cols: number[] = [];
  for (let i = 0; i < n; i++) if (a[i] > 0) rows.push(i);
  for (let j = 0; j < m; j++) if (b[j] > 0) cols.push(j);
  const nr = rows.length,
    nc = cols.length;
  let C: Float64Array;
  if (nr === n && nc === m) C = M;
  else {
    C = new Float64Array(nr * nc);
    for (let r = 0; r < nr; r++) {
      const o = rows[r] * m;
      for (let c = 0; c < nc; c++) C[r * nc + c] = M[o + cols[c]];
    }
  }
  const supply = new Float64Array(nr + nc + 1);
  for (let r = 0; r < nr; r++) supply[r] = a[rows[r]];
  for (let c = 0; c < nc; c++) supply[nr + c] = -b[cols[c]];

  const sub = solveTransport(C, supply, nr, nc, maxIter ?? Math.min(1e8, 50 * (nr + nc) * (nr + nc)));

  const plan = new Float64Array(n * m);
  let cost = 0;
  for (let r = 0; r < nr; r++) {
    const o = rows[r] * m;
    for (let c = 0; c < nc; c++) {
      const f = sub.flow[r * nc + c];
      if (f !== 0) {
        plan[o + cols[c]] = f;
        cost += f * C[r * nc + c];
      }
    }
  }
  return { plan, n, m, cost, method: 'network-simplex', iterations: sub.iterations, converged: sub.converged };
}

interface TransportSolution {
  flow: Float64Array;
  iterations: number;
  converged: boolean;
}

import type { Pricing } from './pricing-wasm';

/**
 * The network simplex's spanning tree on nodes 0..n-1 (supplies), n..n+m-1 (demands), root n+m. Real arcs i→n+j
 * (id i*m+j, cost C[i*m+j]); artificial arcs: row→root and root→column (cost ART). Only tree arcs carry flow,
 * stored per node on the arc to its parent; children are kept as doubly linked sibling lists.
 */
interface Tree {
  C: Float64Array;
  n: number;
  m: number;
  nm: number;
  root: number;
  tol: number;
  parent: Int32Array;
  /** Arc id: < nm real; nm + node for that node's artificial arc. */
  predArc: Int32Array;
  /** 1: the arc goes node → parent. */
  predUp: Uint8Array;
  /** Flow on the arc to the parent. */
  flow: Float64Array;
  depth: Int32Array;
  /** Node potentials (in the pricing kernel's memory when it runs). */
  pi: Float64Array;
  /** The demand nodes' potentials (a view of pi). */
  piCol: Float64Array;
  pricing?: Pricing;
  firstChild: Int32Array;
  nextSib: Int32Array;
  prevSib: Int32Array;
  stack: Int32Array;
  /** Where the next pricing search starts (cyclically) and how many arcs a block has. */
  nextE: number;
  blockSize: number;
}

function attach(t: Tree, u: number, p: number): void {
  const f = t.firstChild[p];
  t.nextSib[u] = f;
  t.prevSib[u] = -1;
  if (f >= 0) t.prevSib[f] = u;
  t.firstChild[p] = u;
}

function detach(t: Tree, u: number, p: number): void {
  const nx = t.nextSib[u],
    pv = t.prevSib[u];
  if (pv >= 0) t.nextSib[pv] = nx;
  else t.firstChild[p] = nx;
  if (nx >= 0) t.prevSib[nx] = pv;
  t.nextSib[u] = t.prevSib[u] = -1;
}

/** The big-M start: every node hangs under the root on its artificial arc, carrying its supply. */
function initialTree(C: Float64Array, supply: Float64Array, n: number, m: number): Tree {
  const N = n + m + 1;
  const root = N - 1;
  const nm = n * m;
  let maxC = 0;
  for (let e = 0; e < nm; e++) {
    const c = Math.abs(C[e]);
    if (c > maxC) maxC = c;
  }
  const ART = (maxC + 1) * N;
  // pricing in WebAssembly SIMD from emdEngine.wasmPricingMin arcs up (the potentials then live in the kernel's memory)
  const pricing = nm >= emdEngine.wasmPricingMin ? pricingFor(C, N) : undefined;
  const pi = pricing ? pricing.pi : new Float64Array(N);
  const t: Tree = {
    C,
    n,
    m,
    nm,
    root,
    tol: 1e-14 * ART,
    parent: new Int32Array(N),
    predArc: new Int32Array(N),
    predUp: new Uint8Array(N),
    flow: new Float64Array(N),
    depth: new Int32Array(N),
    pi,
    piCol: pi.subarray(n, n + m),
    pricing,
    firstChild: new Int32Array(N).fill(-1),
    nextSib: new Int32Array(N).fill(-1),
    prevSib: new Int32Array(N).fill(-1),
    stack: new Int32Array(N),
    nextE: 0,
    blockSize: Math.max(10, Math.ceil(Math.sqrt(nm))),
  };
  const { parent, predArc, predUp, flow, depth } = t;
  parent[root] = -1;
  depth[root] = 0;
  pi[root] = 0;
  for (let u = 0; u < root; u++) {
    parent[u] = root;
    predArc[u] = nm + u;
    depth[u] = 1;
    if (u < n) {
      predUp[u] = 1;
      flow[u] = supply[u];
      pi[u] = -ART;
    } else {
      predUp[u] = 0;
      flow[u] = -supply[u];
      pi[u] = ART;
    }
    attach(t, u, root);
  }
  return t;
}

/** Recomputes depth in the subtree below s (s itself included) and shifts its potentials by sigma: the arcs inside a
 * re-hung subtree are unchanged, so all its potentials move together. */
function refreshSubtree(t: Tree, s: number, sigma: number): void {
  const { stack, depth, parent, pi, firstChild, nextSib } = t;
  let top = 0;
  stack[top++] = s;
  while (top > 0) {
    const u = stack[--top];
    depth[u] = depth[parent[u]] + 1;
    pi[u] += sigma;
    for (let ch = firstChild[u]; ch >= 0; ch = nextSib[ch]) stack[top++] = ch;
  }
}

/** Pricing: block search over real arcs, cyclically from where the last search stopped, row segment by row segment
 * (the search is most of a pivot's time). Returns the entering arc, or -1 when none has a negative reduced cost. */
function price(t: Tree): number {
  const { C, n, m, nm, pi, piCol, pricing, blockSize } = t;
  let best = -1,
    bestRc = -t.tol;
  let e = t.nextE,
    remaining = nm;
  while (remaining > 0) {
    let blockLeft = Math.min(blockSize, remaining);
    remaining -= blockLeft;
    while (blockLeft > 0) {
      const i = (e / m) | 0;
      const o = i * m;
      const j0 = e - o;
      const j1 = Math.min(m, j0 + blockLeft);
      const piI = pi[i];
      if (pricing) {
        // the segment's minimum of C − π_col in SIMD; its first position looked up only when it improves
        const low = pricing.segMin((o + j0) * 8, pricing.piOff + (n + j0) * 8, j1 - j0);
        if (low + piI < bestRc) {
          bestRc = low + piI;
          best = o + j0 + pricing.segFind((o + j0) * 8, pricing.piOff + (n + j0) * 8, j1 - j0, low);
        }
      } else {
        for (let j = j0; j < j1; j++) {
          const rc = C[o + j] + piI - piCol[j];
          if (rc < bestRc) {
            bestRc = rc;
            best = o + j;
          }
        }
      }
      blockLeft -= j1 - j0;
      e = o + j1;
      if (e === nm) e = 0;
    }
    if (best >= 0) break;
  }
  t.nextE = e;
  return best;
}

/** One pivot on the entering arc `best`: the cycle it closes, the leaving arc, the flow pushed round the cycle, and the
 * tree re-hung (with the re-hung part's depths and potentials). */
function pivot(t: Tree, best: number): void {
  const { C, n, m, parent, predArc, predUp, flow, depth, pi } = t;
  const first = (best / m) | 0; // source row node
  const second = n + (best - first * m); // target column node
  // --- join node (lowest common ancestor)
  let x = first,
    y = second;
  while (x !== y) {
    if (depth[x] > depth[y]) x = parent[x];
    else if (depth[y] > depth[x]) y = parent[y];
    else {
      x = parent[x];
      y = parent[y];
    }
  }
  const join = x;
  // --- leaving arc: last blocking arc met when going round the cycle from the join in the flow direction
  let delta = Infinity,
    uOut = -1,
    side = 0;
  for (let u = first; u !== join; u = parent[u]) {
    if (predUp[u] && flow[u] < delta) {
      delta = flow[u];
      uOut = u;
      side = 1;
    }
  }
  for (let u = second; u !== join; u = parent[u]) {
    if (!predUp[u] && flow[u] <= delta) {
      delta = flow[u];
      uOut = u;
      side = 2;
    }
  }
  if (uOut < 0) throw new OtfuseError('INTERNAL', 'network simplex: unbounded cycle (should not happen)');
  // --- push delta round the cycle
  if (delta > 0) {
    for (let u = first; u !== join; u = parent[u]) flow[u] += predUp[u] ? -delta : delta;
    for (let u = second; u !== join; u = parent[u]) flow[u] += predUp[u] ? delta : -delta;
  }
  // --- tree update: cut the arc above uOut, hang the cut part under the other end of the entering arc
  const uIn = side === 1 ? first : second;
  let newParent = side === 1 ? second : first;
  let newArc = best;
  let newUp = side === 1 ? 1 : 0; // first→second is a row→column arc
  let newFlow = delta;
  let u = uIn;
  for (;;) {
    const oldParent = parent[u],
      oldArc = predArc[u],
      oldUp = predUp[u],
      oldFlow = flow[u];
    detach(t, u, oldParent);
    parent[u] = newParent;
    predArc[u] = newArc;
    predUp[u] = newUp;
    flow[u] = newFlow;
    attach(t, u, newParent);
    if (u === uOut) break;
    newParent = u;
    newArc = oldArc;
    newUp = oldUp ? 0 : 1;
    newFlow = oldFlow;
    u = oldParent;
  }
  // the entering arc (row first → column second) gets reduced cost 0: C + pi[first] − pi[second] = 0
  refreshSubtree(t, uIn, side === 1 ? pi[second] - C[best] - pi[first] : C[best] + pi[first] - pi[second]);
}

/** The real arcs' flows, recomputed from the supplies (leaves first) so the marginals hold to rounding; mass left on
 * artificial arcs after convergence means the problem was infeasible or ill-conditioned. */
function treeFlows(t: Tree, supply: Float64Array, converged: boolean): Float64Array {
  const { n, nm, root, parent, predArc, predUp, flow, firstChild, nextSib } = t;
  const order = new Int32Array(root + 1);
  let len = 0;
  order[len++] = root;
  for (let k = 0; k < len; k++) for (let ch = firstChild[order[k]]; ch >= 0; ch = nextSib[ch]) order[len++] = ch;
  const excess = Float64Array.from(supply);
  for (let k = len - 1; k > 0; k--) {
    const u = order[k];
    const f = predUp[u] ? excess[u] : -excess[u];
    flow[u] = f > 0 ? f : 0;
    excess[parent[u]] += excess[u];
  }
  const out = new Float64Array(nm);
  let artificial = 0,
    total = 0;
  for (let u = 0; u < root; u++) {
    const e = predArc[u];
    if (e < nm) out[e] = flow[u];
    else artificial += flow[u];
  }
  for (let i = 0; i < n; i++) total += supply[i];
  if (converged && artificial > 1e-9 * total) {
    throw new OtfuseError('NUMERIC', `EMD: ${artificial} of ${total} mass left on artificial arcs (problem infeasible or ill-conditioned)`);
  }
  return out;
}

/** Transportation problem by network simplex: pivots until no arc prices negative (or maxIter). */
function solveTransport(C: Float64Array, supply: Float64Array, n: number, m: number, maxIter: number): TransportSolution {
  const t = initialTree(C, supply, n, m);
  let iterations = 0;
  let converged = false;
  for (;;) {
    const best = price(t);
    if (best < 0) {
      converged = true;
      break;
    }
    if (iterations >= maxIter) break;
    iterations++;
    pivot(t, best);
  }
  return { flow: treeFlows(t, supply, converged), iterations, converged };
}
