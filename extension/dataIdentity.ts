// Is the training data the evaluation data? The same real path, or the same bytes (a copy under another name):
// training on the set the numbers are measured on makes them meaningless (issue 27 item 1). The engine refuses it
// too; the editor checks before starting so that the refusal names both files in the panel at once.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DataArg } from '../worker/types';
import { OtfuseError } from '../worker/client';

export const dataPath = (d: DataArg | undefined): string | undefined => (d === undefined ? undefined : typeof d === 'string' ? d : d.path);

function real(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

async function sha256(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Same real path, or byte-identical regular files (hashed only when the sizes agree). */
export async function sameData(a: DataArg | undefined, b: DataArg | undefined): Promise<boolean> {
  const pa = dataPath(a),
    pb = dataPath(b);
  if (!pa || !pb) return false;
  const ra = real(pa),
    rb = real(pb);
  if (ra === rb) return true;
  try {
    const sa = fs.statSync(ra),
      sb = fs.statSync(rb);
    if (!sa.isFile() || !sb.isFile() || sa.size !== sb.size) return false;
    return (await sha256(ra)) === (await sha256(rb));
  } catch {
    return false;
  }
}

/** Throws when `train` is the evaluation data (the error names both files). */
export async function refuseTrainingOnEval(train: DataArg, evalData: DataArg | undefined, what = 'evaluation data'): Promise<void> {
  if (!(await sameData(train, evalData))) return;
  const t = dataPath(train)!,
    e = dataPath(evalData)!;
  const how = real(t) === real(e) ? 'the same file' : 'a byte-identical copy';
  throw new OtfuseError(
    'BAD_USAGE',
    `refusing to train on the ${what}: training data ${path.basename(t)} is ${how} of the ${what} ${path.basename(e)} (in ${path.dirname(e)}); the accuracies would be measured on the data the model was trained on. Choose another training set.`,
    { file: t },
  );
}
