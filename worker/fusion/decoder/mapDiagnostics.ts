// Diagnostics of a decoder run's maps (issue 31): decoder fusion aligns by hard assignments (a permutation of heads,
// of MLP units, of residual coordinates), stored as transport plans (run.ts planOf), and used to record none, which
// left the panel's across-depth chart empty for decoder runs. For a permutation of n units the diagnostics a ViT or
// BERT map carries (worker/ot/diagnostics.ts) are exact in O(n) — entropy ln n, row confidence 1, distance to a
// permutation 0, Frobenius distance 0 — so they are written without building the n² plan. `moved` adds what does vary
// across depth for hard maps: the share of units sent to another index (0 for the identity: the two models' units
// were already lined up there).
import { diagnose } from '../../ot/diagnostics';

export function decoderMapDiagnostics(map: Int32Array): Record<string, number> {
  const n = map.length;
  if (n === 0) return {};
  const seen = new Uint8Array(n);
  let fixed = 0;
  let permutation = true;
  for (let i = 0; i < n; i++) {
    const j = map[i];
    if (!(j >= 0 && j < n) || seen[j]) {
      permutation = false;
      break;
    }
    seen[j] = 1;
    if (j === i) fixed++;
  }
  if (permutation) return { entropy: Math.log(n), meanBestMatch: 1, hardness: 0, frobeniusToPermutation: 0, moved: (n - fixed) / n };
  // Not a permutation (decoderMaps never makes one; kept honest): the general diagnostics of the plan run.ts stores.
  const plan = new Float64Array(n * n);
  let moved = 0;
  for (let i = 0; i < n; i++) {
    const j = Math.min(n - 1, Math.max(0, map[i]));
    plan[j * n + i] = 1 / n;
    if (j !== i) moved++;
  }
  const d = diagnose(plan, n, n, undefined, 1);
  return { entropy: d.entropy, meanBestMatch: d.meanBestMatch, hardness: d.hardness, frobeniusToPermutation: d.frobeniusToPermutation, moved: moved / n };
}
