// Symmetric block quantization in the layout of com.microsoft.MatMulNBits, shared by the model builder and
// `aigw models optimize` (no zero points: the implied zero point is 2^(bits-1), i.e. 8 for 4-bit and 128 for 8-bit).

export type QuantBits = 4 | 8;
export const QUANT_BLOCK_SIZE = 32;

export class QuantizeError extends Error {
  override name = 'QuantizeError';
}

/** A [K, N] matrix as MatMulNBits stores it. */
export interface QuantizedMatrix {
  k: number;
  n: number;
  bits: QuantBits;
  blockSize: number;
  /** uint8 [N, K/blockSize, blockSize*bits/8]; 4-bit packs two values a byte, the even k in the low nibble. */
  data: Uint8Array;
  /** float [N * K/blockSize], block b of column n at n * K/blockSize + b. */
  scales: Float32Array;
}

export function blobSize(bits: QuantBits, blockSize = QUANT_BLOCK_SIZE): number {
  return (blockSize * bits) / 8;
}

/** Quantizes row-major [K, N] `weights` (y = x @ W) per column in blocks of 32 along K. */
export function quantizeMatrix(weights: Float32Array, k: number, n: number, bits: QuantBits): QuantizedMatrix {
  if (weights.length !== k * n) throw new QuantizeError(`expected ${k * n} weights for [${k}, ${n}], got ${weights.length}`);
  return quantizeBlocks(weights, k, n, bits, { output: 1, along: n });
}

/**
 * Quantizes row-major [N, K] `rows` (an embedding table: row n is output n's weights along K) into
 * the same MatMulNBits layout as quantizeMatrix(transpose(rows)), without building the transpose.
 */
export function quantizeRows(rows: Float32Array, n: number, k: number, bits: QuantBits): QuantizedMatrix {
  if (rows.length !== k * n) throw new QuantizeError(`expected ${k * n} weights for [${n}, ${k}], got ${rows.length}`);
  return quantizeBlocks(rows, k, n, bits, { output: k, along: 1 });
}

/**
 * The one quantizer behind both layouts: output o's weight number j along K is
 * source[o * stride.output + j * stride.along]. Symmetric per block: the range [-qMax, qMax]
 * keeps the error bound at scale/2; stored values are offset by the zero point 2^(bits-1).
 */
function quantizeBlocks(source: Float32Array, k: number, n: number, bits: QuantBits, stride: { output: number; along: number }): QuantizedMatrix {
  const blockSize = QUANT_BLOCK_SIZE;
  if (k % blockSize !== 0) throw new QuantizeError(`K=${k} is not a multiple of the block size ${blockSize}`);
  const blocks = k / blockSize;
  const blob = blobSize(bits, blockSize);
  const zeroPoint = 1 << (bits - 1);
  const qMax = zeroPoint - 1;
  const data = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  for (let o = 0; o < n; o++) {
    for (let b = 0; b < blocks; b++) {
      const start = o * stride.output + b * blockSize * stride.along;
      let maxAbs = 0;
      for (let i = 0; i < blockSize; i++) maxAbs = Math.max(maxAbs, Math.abs(source[start + i * stride.along]!));
      const scale = Math.fround(maxAbs / qMax);
      scales[o * blocks + b] = scale;
      const base = (o * blocks + b) * blob;
      for (let i = 0; i < blockSize; i++) {
        const q = scale === 0 ? 0 : Math.max(-zeroPoint, Math.min(qMax, Math.round(source[start + i * stride.along]! / scale)));
        const stored = q + zeroPoint;
        if (bits === 8) data[base + i] = stored;
        else data[base + (i >> 1)]! |= stored << ((i & 1) * 4);
      }
    }
  }
  return { k, n, bits, blockSize, data, scales };
}

/** The row-major [K, N] float matrix that a quantized weight really represents. */
export function dequantize(q: QuantizedMatrix): Float32Array {
  const { k, n, bits, blockSize, data, scales } = q;
  const blocks = k / blockSize;
  const blob = blobSize(bits, blockSize);
  const zeroPoint = 1 << (bits - 1);
  const out = new Float32Array(k * n);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < blocks; b++) {
      const scale = scales[col * blocks + b];
      const base = (col * blocks + b) * blob;
      for (let i = 0; i < blockSize; i++) {
        const stored = bits === 8 ? data[base + i] : (data[base + (i >> 1)] >> ((i & 1) * 4)) & 0x0f;
        out[(b * blockSize + i) * n + col] = (stored - zeroPoint) * scale;
      }
    }
  }
  return out;
}
