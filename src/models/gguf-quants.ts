// ggml's tensor encodings, block by block, as llama.cpp's reference (ggml-quants.c) defines them:
// decoding F32/F16/BF16/Q4_0/Q8_0/Q4_K/Q5_K/Q6_K to floats, and encoding F32/F16/Q8_0/Q4_0/Q4_K/Q6_K
// (the GGUF writer of tools/model-builder uses the encoders; the importer the decoders).
import { GGMLQuantizationType as GgmlType } from '@huggingface/gguf';
import { GgufImportError } from './errors.js';

export { GgmlType };

interface BlockFormat {
  /** Values per block. */
  size: number;
  bytes: number;
}

const FORMATS: Partial<Record<GgmlType, BlockFormat>> = {
  [GgmlType.F32]: { size: 1, bytes: 4 },
  [GgmlType.F16]: { size: 1, bytes: 2 },
  [GgmlType.BF16]: { size: 1, bytes: 2 },
  [GgmlType.Q4_0]: { size: 32, bytes: 18 },
  [GgmlType.Q8_0]: { size: 32, bytes: 34 },
  [GgmlType.Q4_K]: { size: 256, bytes: 144 },
  [GgmlType.Q5_K]: { size: 256, bytes: 176 },
  [GgmlType.Q6_K]: { size: 256, bytes: 210 },
};

export function ggmlTypeName(type: GgmlType): string {
  return GgmlType[type] ?? `type ${type}`;
}

function formatOf(type: GgmlType): BlockFormat {
  const format = FORMATS[type];
  if (!format) {
    throw new GgufImportError(
      'unsupported_tensor_type',
      `GGUF tensors of type ${ggmlTypeName(type)} are not supported; supported: ${Object.keys(FORMATS).map((t) => ggmlTypeName(Number(t))).join(', ')}`,
    );
  }
  return format;
}

/** Bytes that `count` values of `type` take (count a multiple of the block size). */
export function ggmlByteSize(type: GgmlType, count: number): number {
  const { size, bytes } = formatOf(type);
  if (count % size !== 0) throw new GgufImportError('unsupported_tensor_type', `${count} values do not fill ${ggmlTypeName(type)} blocks of ${size}`);
  return (count / size) * bytes;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Nearest float16 (ties to even), as ggml's GGML_FP32_TO_FP16 on CPUs with F16C. */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let rounded = mantissa >> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest === half && (rounded & 1))) rounded++;
    return sign | rounded;
  }
  let rounded = mantissa >> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (rounded & 1))) rounded++;
  if (rounded === 0x400) {
    rounded = 0;
    e++;
    if (e >= 31) return sign | 0x7c00;
  }
  return sign | (e << 10) | rounded;
}

function bf16ToF32(h: number): number {
  u32Scratch[0] = h << 16;
  return f32Scratch[0];
}

// Q4_K/Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes.
function scaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  if (j < 4) return [q[at + j] & 63, q[at + j + 4] & 63];
  return [(q[at + j + 4] & 0xf) | ((q[at + j - 4] >> 6) << 4), (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4)];
}

/** Decodes `count` values of `type` from `bytes` (little-endian, as GGUF stores them). */
export function dequantizeGgml(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const expected = ggmlByteSize(type, count);
  if (bytes.length < expected) throw new GgufImportError('invalid_gguf', `tensor data is ${bytes.length} bytes, ${ggmlTypeName(type)} needs ${expected}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const half = (at: number) => f16ToF32(view.getUint16(at, true));
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case GgmlType.F16:
      for (let i = 0; i < count; i++) out[i] = half(i * 2);
      break;
    case GgmlType.BF16:
      for (let i = 0; i < count; i++) out[i] = bf16ToF32(view.getUint16(i * 2, true));
      break;
    case GgmlType.Q4_0:
      for (let b = 0; b < count / 32; b++) {
        const at = b * 18;
        const d = half(at);
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 2 + j];
          out[b * 32 + j] = ((q & 0xf) - 8) * d;
          out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      break;
    case GgmlType.Q8_0:
      for (let b = 0; b < count / 32; b++) {
        const d = half(b * 34);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = view.getInt8(b * 34 + 2 + j) * d;
      }
      break;
    case GgmlType.Q4_K:
    case GgmlType.Q5_K:
      for (let b = 0; b < count / 256; b++) {
        const five = type === GgmlType.Q5_K;
        const at = b * (five ? 176 : 144);
        const d = half(at);
        const dmin = half(at + 2);
        const qh = at + 16; // Q5_K only: the fifth bits
        const qs = at + (five ? 48 : 16);
        for (let j = 0; j < 4; j++) {
          const [sc1, m1] = scaleMinK4(2 * j, bytes, at + 4);
          const [sc2, m2] = scaleMinK4(2 * j + 1, bytes, at + 4);
          for (let l = 0; l < 32; l++) {
            const q = bytes[qs + j * 32 + l];
            const high1 = five && bytes[qh + l] & (1 << (2 * j)) ? 16 : 0;
            const high2 = five && bytes[qh + l] & (2 << (2 * j)) ? 16 : 0;
            out[b * 256 + j * 64 + l] = d * sc1 * ((q & 0xf) + high1) - dmin * m1;
            out[b * 256 + j * 64 + 32 + l] = d * sc2 * ((q >> 4) + high2) - dmin * m2;
          }
        }
      }
      break;
    case GgmlType.Q6_K:
      for (let b = 0; b < count / 256; b++) {
        const at = b * 210;
        const d = half(at + 208);
        for (let n = 0; n < 2; n++) {
          const ql = at + n * 64;
          const qh = at + 128 + n * 32;
          const sc = at + 192 + n * 8;
          const y = b * 256 + n * 128;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const h = bytes[qh + l];
            const q1 = ((bytes[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
            const q2 = ((bytes[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
            const q3 = ((bytes[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const q4 = ((bytes[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            out[y + l] = d * view.getInt8(sc + is) * q1;
            out[y + l + 32] = d * view.getInt8(sc + is + 2) * q2;
            out[y + l + 64] = d * view.getInt8(sc + is + 4) * q3;
            out[y + l + 96] = d * view.getInt8(sc + is + 6) * q4;
          }
        }
      }
      break;
    default:
      formatOf(type);
  }
  return out;
}

/** Encodes floats as `type`, the way llama.cpp's reference quantizers do (no importance matrix). */
export function quantizeGgml(type: GgmlType, values: Float32Array): Uint8Array {
  const out = new Uint8Array(ggmlByteSize(type, values.length));
  const view = new DataView(out.buffer);
  switch (type) {
    case GgmlType.F32:
      values.forEach((v, i) => view.setFloat32(i * 4, v, true));
      break;
    case GgmlType.F16:
      values.forEach((v, i) => view.setUint16(i * 2, f32ToF16(v), true));
      break;
    case GgmlType.Q4_0:
      for (let b = 0; b < values.length / 32; b++) {
        // The value of largest magnitude maps to -8 exactly (quantize_row_q4_0_ref).
        let amax = 0;
        let max = 0;
        for (let j = 0; j < 32; j++) {
          const v = values[b * 32 + j];
          if (Math.abs(v) > amax) {
            amax = Math.abs(v);
            max = v;
          }
        }
        const d = Math.fround(max / -8);
        const id = d === 0 ? 0 : Math.fround(1 / d);
        view.setUint16(b * 18, f32ToF16(d), true);
        for (let j = 0; j < 16; j++) {
          const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(values[b * 32 + j] * id) + 8.5)));
          const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(values[b * 32 + 16 + j] * id) + 8.5)));
          out[b * 18 + 2 + j] = q0 | (q1 << 4);
        }
      }
      break;
    case GgmlType.Q8_0:
      for (let b = 0; b < values.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[b * 32 + j]));
        const d = Math.fround(amax / 127);
        const id = d === 0 ? 0 : Math.fround(1 / d);
        view.setUint16(b * 34, f32ToF16(d), true);
        for (let j = 0; j < 32; j++) view.setInt8(b * 34 + 2 + j, Math.round(Math.fround(values[b * 32 + j] * id)));
      }
      break;
    case GgmlType.Q4_K:
      for (let b = 0; b < values.length / 256; b++) quantizeBlockQ4K(values.subarray(b * 256, b * 256 + 256), out, b * 144);
      break;
    case GgmlType.Q6_K:
      for (let b = 0; b < values.length / 256; b++) quantizeBlockQ6K(values.subarray(b * 256, b * 256 + 256), out, b * 210);
      break;
    default:
      throw new GgufImportError('unsupported_tensor_type', `writing ${ggmlTypeName(type)} is not supported`);
  }
  return out;
}

// A plain min/max Q4_K encoder (llama.cpp searches for better scales; any valid block decodes the same way).
function quantizeBlockQ4K(x: Float32Array, out: Uint8Array, at: number): void {
  const view = new DataView(out.buffer);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let s = 0; s < 8; s++) {
    let lo = 0;
    let hi = 0;
    for (let l = 0; l < 32; l++) {
      lo = Math.min(lo, x[s * 32 + l]);
      hi = Math.max(hi, x[s * 32 + l]);
    }
    scales[s] = (hi - lo) / 15;
    mins[s] = -lo;
  }
  const d = f16ToF32(f32ToF16(Math.max(...scales) / 63));
  const dmin = f16ToF32(f32ToF16(Math.max(...mins) / 63));
  view.setUint16(at, f32ToF16(d), true);
  view.setUint16(at + 2, f32ToF16(dmin), true);
  const sc = Array.from(scales, (s) => (d === 0 ? 0 : Math.min(63, Math.round(s / d))));
  const m = Array.from(mins, (v) => (dmin === 0 ? 0 : Math.min(63, Math.round(v / dmin))));
  for (let j = 0; j < 4; j++) {
    out[at + 4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    out[at + 8 + j] = m[j] | ((m[j + 4] >> 4) << 6);
    out[at + 12 + j] = (sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4);
  }
  const level = (s: number, v: number) => {
    const step = d * sc[s];
    return step === 0 ? 0 : Math.max(0, Math.min(15, Math.round((v + dmin * m[s]) / step)));
  };
  for (let j = 0; j < 4; j++) {
    for (let l = 0; l < 32; l++) {
      out[at + 16 + j * 32 + l] = level(2 * j, x[j * 64 + l]) | (level(2 * j + 1, x[j * 64 + 32 + l]) << 4);
    }
  }
}

function quantizeBlockQ6K(x: Float32Array, out: Uint8Array, at: number): void {
  const view = new DataView(out.buffer);
  const scales = new Float32Array(16);
  for (let s = 0; s < 16; s++) {
    let amax = 0;
    for (let l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[s * 16 + l]));
    scales[s] = amax / 31;
  }
  const d = f16ToF32(f32ToF16(Math.max(...scales) / 127));
  view.setUint16(at + 208, f32ToF16(d), true);
  const sc = Array.from(scales, (s) => (d === 0 ? 0 : Math.min(127, Math.round(s / d))));
  sc.forEach((v, s) => view.setInt8(at + 192 + s, v));
  const levels = Array.from(x, (v, i) => {
    const step = d * sc[i >> 4];
    return (step === 0 ? 0 : Math.max(-32, Math.min(31, Math.round(v / step)))) + 32;
  });
  for (let n = 0; n < 2; n++) {
    for (let l = 0; l < 32; l++) {
      const [q1, q2, q3, q4] = [0, 32, 64, 96].map((k) => levels[n * 128 + k + l]);
      out[at + n * 64 + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      out[at + n * 64 + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      out[at + 128 + n * 32 + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}
