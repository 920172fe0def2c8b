// ggml block encodings: float16, Q4_0/Q8_0 repacked into MatMulNBits bit for bit, and the error
// that requantizing K-quants (Q4_K, Q6_K) to MatMulNBits blocks of 32 adds.
import { describe, expect, it } from 'vitest';
import { GgmlType, dequantizeGgml, f16ToF32, f32ToF16, quantizeGgml } from '../../src/models/gguf-quants.js';
import { repackQ4_0, repackQ8_0, requantizeBits } from '../../src/models/gguf-weights.js';
import { dequantize, quantizeMatrix } from '../../tools/model-builder/quantize.js';
import { seededNormal } from '../../tools/model-builder/weights.js';

const ROWS = 64;
const K = 512;
const weights = seededNormal(7, 'gguf-quants', ROWS * K, 0, 0.02);

/** Rows [N][K] to row-major [K, N], the layout of the graph's matrices. */
function transpose(rows: Float32Array, n: number, k: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) out[c * n + r] = rows[r * k + c];
  return out;
}

function relativeRms(actual: Float32Array, expected: Float32Array): number {
  let err = 0;
  let ref = 0;
  for (let i = 0; i < actual.length; i++) {
    err += (actual[i] - expected[i]) ** 2;
    ref += expected[i] ** 2;
  }
  return Math.sqrt(err / ref);
}

describe('float16', () => {
  it('rounds to nearest, ties to even, with subnormals and infinities', () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(2 ** -24)).toBe(0x0001);
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (let h = 0; h < 0x7c00; h += 97) expect(f32ToF16(f16ToF32(h))).toBe(h);
  });
});

describe('Q4_0 and Q8_0 become MatMulNBits without losing a bit', () => {
  for (const [type, repack, bits] of [
    [GgmlType.Q4_0, repackQ4_0, 4],
    [GgmlType.Q8_0, repackQ8_0, 8],
  ] as const) {
    it(`${GgmlType[type]} -> ${bits}-bit MatMulNBits`, () => {
      const encoded = quantizeGgml(type, weights);
      const ggmlValues = dequantizeGgml(type, encoded, weights.length);
      const packed = repack(encoded, ROWS, K);
      expect(packed).toMatchObject({ k: K, n: ROWS, bits, blockSize: 32 });
      // MatMulNBits's values (zero point 2^(bits-1), f32 scales) equal llama.cpp's, exactly.
      expect(dequantize(packed)).toEqual(transpose(ggmlValues, ROWS, K));
      // And the encodings are what ggml's reference quantizers give: within half a step.
      expect(relativeRms(ggmlValues, weights)).toBeLessThan(bits === 4 ? 0.1 : 0.006);
    });
  }
});

describe('K-quants requantized to MatMulNBits blocks of 32', () => {
  /*
   * For normal weights a block of 32 spans about ±2.1σ. Symmetric int4 steps maxabs/7 ≈ 0.3σ, a
   * uniform rounding error of step/√12 ≈ 0.09σ: requantizing Q4_K's values adds ≈ 9-10 % relative
   * RMS error, about as much as Q4_K's own (range/15/√12 ≈ 0.08σ), so the combined error vs the
   * original floats is ≈ 12 %. int8 steps maxabs/127: Q6_K requantized adds ≈ 0.5 %.
   */
  it('Q4_K -> int4 adds ~10 % relative RMS error, Q6_K -> int8 ~0.5 %', () => {
    const bounds = { [GgmlType.Q4_K]: { own: 0.1, added: 0.11 }, [GgmlType.Q6_K]: { own: 0.03, added: 0.007 } };
    for (const type of [GgmlType.Q4_K, GgmlType.Q6_K] as const) {
      const kValues = dequantizeGgml(type, quantizeGgml(type, weights), weights.length);
      const own = relativeRms(kValues, weights);
      const matrix = transpose(kValues, ROWS, K);
      const requantized = dequantize(quantizeMatrix(matrix, K, ROWS, requantizeBits(type)));
      const added = relativeRms(requantized, matrix);
      const total = relativeRms(requantized, transpose(weights, ROWS, K));
      console.log(`${GgmlType[type]}: own ${own.toFixed(4)}, added by requantizing ${added.toFixed(4)}, total ${total.toFixed(4)}`);
      expect(own).toBeLessThan(bounds[type].own);
      expect(added).toBeLessThan(bounds[type].added);
      expect(added).toBeGreaterThan(0);
      expect(total).toBeLessThan(Math.hypot(bounds[type].own, bounds[type].added));
    }
  });

  it('decodes every 6-bit scale and min of a Q4_K block (the 12-byte packing)', () => {
    // One super-block whose eight sub-blocks each hold one constant value: decoding must give
    // back each sub-block's own value, which only works if all 8 scales and mins unpack right.
    const values = new Float32Array(256);
    for (let s = 0; s < 8; s++) values.fill((s - 3.5) * 0.01, s * 32, s * 32 + 32);
    values[0] = -0.05; // a spread in the first sub-block too, so scales differ from mins
    const decoded = dequantizeGgml(GgmlType.Q4_K, quantizeGgml(GgmlType.Q4_K, values), 256);
    for (let i = 1; i < 256; i++) expect(Math.abs(decoded[i] - values[i])).toBeLessThan(0.004);
  });
});
