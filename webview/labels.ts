// Human labels, units and explanations for the per-map diagnostics the engine records (run.json layers[].diagnostics).
export interface DiagnosticLabel {
  label: string;
  /** How to show the value (cols: the anchor's neurons, rows: the other model's). */
  format: (v: number, cols: number, rows?: number) => string;
  help: string;
}

const num = (v: number) => (!Number.isFinite(v) ? String(v) : v === 0 ? '0' : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toFixed(3) : v.toExponential(2));
const share = (v: number) => `${(100 * v).toFixed(1)} %`;

export const DIAGNOSTICS: Record<string, DiagnosticLabel> = {
  cost: {
    label: 'Transport cost',
    format: num,
    help: "⟨P, C⟩: total cost of the plan on the normalised cost matrix. Lower means the two models' neurons match more closely.",
  },
  entropy: {
    label: 'Plan entropy',
    format: (v, cols, rows = cols) =>
      `${num(v)} nats (permutation ln ${Math.min(rows, cols)} = ${num(Math.log(Math.min(rows, cols)))}, uniform ln(${rows}·${cols}) = ${num(Math.log(rows * cols))})`,
    help: 'Entropy of the transport plan (total mass 1): ln n for a hard one-to-one map of n neurons (ln 48 ≈ 3.87 for 48), ln(n·m) for a uniform plan. Soft (entropic) alignment lies between.',
  },
  meanBestMatch: {
    label: 'Row confidence',
    format: (v, cols) => `${share(v)} (uniform ${share(1 / Math.max(1, cols))})`,
    help: "Mean share of each neuron's mass that goes to its single best partner: 100 % for a permutation, 1/m for a uniform plan.",
  },
  hardness: {
    label: 'Distance to a permutation',
    format: share,
    help: 'Mass not on the best permutation: 0 % for a permutation (hard alignment), near 100 % for a uniform plan.',
  },
  frobeniusToPermutation: {
    label: 'Frobenius distance to nearest permutation',
    format: num,
    help: '‖nP − Π‖ / √(2n): 0 for a permutation, 1 for maximally far.',
  },
  ms: {
    label: 'Solve time',
    format: (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`),
    help: 'Wall time to build the cost and solve this map.',
  },
  converged: {
    label: 'Solver converged',
    format: (v) => (v ? 'yes' : 'no — stopped at its iteration cap'),
    help: 'Whether the OT solver met its tolerance (1) or stopped at its iteration limit (0): then the map is approximate.',
  },
  costScale: {
    label: 'Cost normalisation',
    format: num,
    help: 'The factor the cost matrix was divided by before solving (recipe costNorm), so that the regularisation means the same for every layer.',
  },
  onnxRuntime: {
    label: 'Solved on ONNX Runtime',
    format: (v) => (v ? 'yes' : 'no'),
    help: 'The Sinkhorn iterations ran as an ONNX Runtime graph (on the chosen execution provider) instead of in JavaScript.',
  },
  moved: {
    label: 'Units moved',
    format: share,
    help: "Share of the other model's units this map sends to a different index: 0 % where the two models' units already line up (the identity). Decoder maps are hard assignments, so their distance to a permutation is 0 by construction; this is what varies across depth.",
  },
  iterations: {
    label: 'Solver iterations',
    format: (v) => String(Math.round(v)),
    help: 'Iterations the OT solver took (Sinkhorn: scaling updates; EMD: network-simplex pivots).',
  },
};

export function diagnosticLabel(key: string): DiagnosticLabel {
  return DIAGNOSTICS[key] ?? { label: key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase()), format: num, help: key };
}
