// How files are named in what users share (model metadata, model cards): never an absolute local path.
import path from 'node:path';

/** A file's name as shared artefacts (model metadata, model cards) show it: its base name, with its folder's name
 * in front when the base name is a generic one a Hugging Face folder uses (`a/model.onnx`, not two `model.onnx`);
 * never an absolute path. */
export function shareableName(file: string): string {
  const base = path.basename(file);
  return /^(model|pytorch_model|fused|finetuned)(\.|-\d|$)/.test(base) && path.basename(path.dirname(file))
    ? `${path.basename(path.dirname(file))}/${base}`
    : base;
}
