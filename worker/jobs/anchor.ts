// The automatic anchor (`otfuse fuse … --anchor auto`, FuseRequest.anchor 'auto'): the parent with the lowest loss
// on the held-out slice of the calibration data that the auto-tune scores its trials on (heldOutSplit; never the
// evaluation data). The anchor's graph and widths define the fused model and, on parents trained on different data,
// the order matters: the non-IID pair fused onto the weaker parent gives 76.8 % instead of 79.3 % on the demo's
// 2,000 test images (bench/quality/noniid.md). Ties keep the given order. Decoder LMs have no labels to score on.
import path from 'node:path';
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import type { ProviderChoice } from '../runtime/providers';
import type { AnchorChoice } from '../types';
import { heldOutSplit, sliceDataset } from './autotune';

/** The value of FuseRequest.anchor (and `--anchor`) that asks for the automatic choice. */
export const AUTO_ANCHOR = 'auto';

export async function chooseAnchor(
  files: string[],
  models: OnnxModel[],
  calib: Dataset | undefined,
  samples: number,
  options: { provider?: ProviderChoice; signal?: AbortSignal } = {},
): Promise<{ index: number; record: AnchorChoice }> {
  if (!calib) throw new OtfuseError('BAD_USAGE', `--anchor ${AUTO_ANCHOR} scores the parents on held-out calibration data: give --data`);
  const { fitSamples, heldOut } = heldOutSplit(calib.size, samples);
  const scored = sliceDataset(calib, fitSamples, heldOut);
  if (scored.size < 1) throw new OtfuseError('BAD_DATA', `--anchor ${AUTO_ANCHOR}: the calibration data has no held-out samples`, { file: calib.source });
  const parents: AnchorChoice['parents'] = [];
  for (let i = 0; i < models.length; i++) {
    const r = await evaluateModel(models[i], scored, { provider: options.provider, signal: options.signal, batchSize: 256 });
    parents.push({ model: files[i], loss: r.loss, accuracy: r.accuracy });
  }
  const index = parents.reduce((b, p, i) => (p.loss < parents[b].loss ? i : b), 0);
  return {
    index,
    record: {
      rule: `lowest loss on ${scored.size} held-out calibration samples (${path.basename(calib.source)} samples ${fitSamples}–${fitSamples + scored.size - 1})`,
      heldOutSamples: scored.size,
      chosen: files[index],
      parents,
    },
  };
}
