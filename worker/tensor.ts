// Tensors are typed arrays plus a shape, row-major.
export type NumericArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

export interface Tensor<T extends NumericArray = Float32Array> {
  data: T;
  shape: number[];
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensor(data: Float32Array, shape: number[]): Tensor {
  if (data.length !== sizeOf(shape)) throw new Error(`tensor data length ${data.length} does not match shape [${shape}]`);
  return { data, shape };
}

/** Index of the largest value in each row of a [rows, cols] array. */
export function argmaxRows(data: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = data[r * cols + c];
      if (v > bestValue) { bestValue = v; best = c; }
    }
    out[r] = best;
  }
  return out;
}
