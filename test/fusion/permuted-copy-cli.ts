// Writes a neuron-permuted copy of a ViT fixture (functionally identical: every hidden layer, head and head dim
// permuted consistently; test/fusion/vit-helpers.ts), for the UI test of "sort by match": fused with EMD, every
// map is an exact permutation, which sorted by match must show as the identity diagonal.
// Usage (bundled and run by scripts/e2e/fixtures.mjs): node permuted-copy.js <in.onnx> <out.onnx> <seed>
import { loadModel } from '../../worker/onnx/model';
import { permutedCopy } from './vit-helpers';

const [input, output, seed] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: permuted-copy <in.onnx> <out.onnx> [seed]');
permutedCopy(loadModel(input), Number(seed ?? 7)).model.save(output);
