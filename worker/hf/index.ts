// Hugging Face checkpoints as a model source: every command that loads a model (eval, inspect, fuse, finetune)
// also takes an HF folder, its model.safetensors or its shard index. Imported once by the engine API.
import { isDirectory } from '../io/read';
import { registerModelSource } from '../onnx/model';
import { hfFolderOf } from './checkpoint';
import { importHf } from './import';
import '../data/text'; // .jsonl/.csv text through a model folder's tokenizer
import '../data/imagefolder'; // class folders of PNG/JPEG through preprocessor_config.json

/** Folders (an ONNX model is never one) and the safetensors / index file of an HF folder. */
export const hfModelSource = {
  accepts: (file: string) => !file.endsWith('.onnx') && (isDirectory(file) || hfFolderOf(file) !== undefined),
  load: (file: string) => importHf(file),
};

registerModelSource(hfModelSource);

export { importHf } from './import';
export { hfFolderOf } from './checkpoint';
