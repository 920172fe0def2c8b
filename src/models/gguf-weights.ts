// A GGUF file's tensors as the weights the Llama graph writer takes, one layer at a time:
// Q4_0 and Q8_0 blocks repacked bit for bit into MatMulNBits (block 32, zero point 8 / 128; the
// token embedding's rows likewise, for GatherBlockQuantized),
// float tensors kept float (the graph quantizes them if asked), K-quants decoded and requantized
// to int4 (Q4_K) or int8 (Q5_K, Q6_K) blocks of 32; llama's permuted q/k rows put back in HF order.
import { closeSync, openSync, readSync } from 'node:fs';
import type { GGUFTensorInfo } from '@huggingface/gguf';
import type { GraphLayerWeights, GraphWeightSource, LinearWeight } from '../../tools/model-builder/llama-ops.js';
import { QUANT_BLOCK_SIZE, type QuantizedMatrix, quantizeMatrix } from '../../tools/model-builder/quantize.js';
import type { LlamaShape } from '../../tools/model-builder/weights.js';
import { GgufImportError } from './errors.js';
import { GgmlType, dequantizeGgml, f16ToF32, ggmlByteSize, ggmlTypeName } from './gguf-quants.js';

export interface GgufTensorSource {
  file: string;
  tensors: GGUFTensorInfo[];
  dataOffset: bigint;
}

/** How a tensor's values become MatMulNBits bits, for the import summary. */
export type WeightTreatment = 'repacked' | 'requantized' | 'float';

/** What becomes of a GGUF tensor type in the ONNX graph. */
export function treatmentOf(type: GgmlType): WeightTreatment {
  if (type === GgmlType.Q4_0 || type === GgmlType.Q8_0) return 'repacked';
  if (type === GgmlType.Q4_K || type === GgmlType.Q5_K || type === GgmlType.Q6_K) return 'requantized';
  return 'float';
}

/** K-quants requantize to the next MatMulNBits width that holds their precision. */
export function requantizeBits(type: GgmlType): 4 | 8 {
  return type === GgmlType.Q4_K ? 4 : 8;
}

/** Q4_0 block (f16 d, 16 bytes: value j in the low nibble of byte j, value j+16 in the high) to MatMulNBits's nibble order. */
export function repackQ4_0(raw: Uint8Array, rows: number, k: number): QuantizedMatrix {
  const blocks = k / 32;
  const data = new Uint8Array(rows * blocks * 16);
  const scales = new Float32Array(rows * blocks);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const nibble = (at: number, j: number) => (j < 16 ? raw[at + 2 + j] & 0xf : raw[at + 2 + j - 16] >> 4);
  for (let b = 0; b < rows * blocks; b++) {
    const at = b * 18;
    scales[b] = f16ToF32(view.getUint16(at, true));
    for (let i = 0; i < 16; i++) data[b * 16 + i] = nibble(at, 2 * i) | (nibble(at, 2 * i + 1) << 4);
  }
  return { k, n: rows, bits: 4, blockSize: QUANT_BLOCK_SIZE, data, scales };
}

/** Q8_0 block (f16 d, 32 int8) to MatMulNBits 8-bit: stored byte = q + 128. */
export function repackQ8_0(raw: Uint8Array, rows: number, k: number): QuantizedMatrix {
  const blocks = k / 32;
  const data = new Uint8Array(rows * blocks * 32);
  const scales = new Float32Array(rows * blocks);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let b = 0; b < rows * blocks; b++) {
    scales[b] = f16ToF32(view.getUint16(b * 34, true));
    for (let i = 0; i < 32; i++) data[b * 32 + i] = (view.getInt8(b * 34 + 2 + i) + 128) & 0xff;
  }
  return { k, n: rows, bits: 8, blockSize: QUANT_BLOCK_SIZE, data, scales };
}

/** A row-major [rows, cols] matrix transposed: GGUF's rows [N][K] to the graph's [K, N], and back. */
export function transposeRows(rowsData: Float32Array, rows: number, k: number): Float32Array {
  const out = new Float32Array(rowsData.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) out[c * rows + r] = rowsData[r * k + c];
  return out;
}

/** Undoes convert_hf_to_gguf's q/k permutation: HF row (head, half, i) is GGUF row (head, 2i + half). */
function unpermuteRows(raw: Uint8Array, heads: number, headDim: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(raw.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let part = 0; part < 2; part++) {
      for (let i = 0; i < half; i++) {
        const from = (h * headDim + 2 * i + part) * rowBytes;
        out.set(raw.subarray(from, from + rowBytes), (h * headDim + part * half + i) * rowBytes);
      }
    }
  }
  return out;
}

export class GgufWeights implements GraphWeightSource {
  readonly ropeFreqFactors?: Float32Array;
  private readonly byName: Map<string, GGUFTensorInfo>;
  private fd: number | undefined;

  constructor(
    readonly shape: LlamaShape,
    private readonly source: GgufTensorSource,
    /** Architecture `llama` stores q/k rows permuted for its interleaved rotary. */
    private readonly permutedRotary: boolean,
  ) {
    this.byName = new Map(source.tensors.map((t) => [t.name, t]));
    this.fd = openSync(source.file, 'r');
    if (this.byName.has('rope_freqs.weight')) this.ropeFreqFactors = this.floats('rope_freqs.weight');
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): GGUFTensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new GgufImportError('invalid_gguf', `GGUF file ${this.source.file} has no tensor ${name}`);
    return info;
  }

  private raw(info: GGUFTensorInfo): Uint8Array {
    const count = info.shape.reduce((a, b) => a * Number(b), 1);
    const bytes = Buffer.alloc(ggmlByteSize(info.dtype, count));
    const position = Number(this.source.dataOffset + info.offset);
    const read = readSync(this.fd!, bytes, 0, bytes.length, position);
    if (read !== bytes.length) throw new GgufImportError('invalid_gguf', `GGUF file ${this.source.file} ends inside tensor ${info.name}; the download is incomplete`);
    return bytes;
  }

  /** A tensor decoded to floats in GGUF's row order (rows of shape[0] values). */
  floats(name: string, heads?: number): Float32Array {
    const info = this.info(name);
    const count = info.shape.reduce((a, b) => a * Number(b), 1);
    let raw = this.raw(info);
    // A permuted bias (llama rows, one value each) moves like the rows of its matrix.
    const rows = info.shape.length === 1 ? count : count / Number(info.shape[0]);
    if (heads !== undefined) raw = unpermuteRows(raw, heads, this.shape.headDim, raw.length / rows);
    return dequantizeGgml(info.dtype, raw, count);
  }

  /** A [K (inputs), N (outputs)] projection; `heads` when its rows are llama's permuted q or k. */
  linear(name: string, heads?: number): LinearWeight {
    const info = this.info(name);
    if (info.shape.length !== 2) throw new GgufImportError('invalid_gguf', `GGUF tensor ${name} is not a matrix`);
    const [k, n] = info.shape.map(Number);
    let raw = this.raw(info);
    if (heads !== undefined && this.permutedRotary) raw = unpermuteRows(raw, heads, this.shape.headDim, raw.length / n);
    if (info.dtype === GgmlType.Q4_0) return repackQ4_0(raw, n, k);
    if (info.dtype === GgmlType.Q8_0) return repackQ8_0(raw, n, k);
    const rowsData = dequantizeGgml(info.dtype, raw, k * n);
    const floats = transposeRows(rowsData, n, k);
    if (treatmentOf(info.dtype) === 'requantized') return quantizeMatrix(floats, k, n, requantizeBits(info.dtype));
    if (treatmentOf(info.dtype) !== 'float') throw new GgufImportError('unsupported_tensor_type', `GGUF tensor ${name} is ${ggmlTypeName(info.dtype)}`);
    return floats;
  }

  /** Q4_0 and Q8_0 rows stay blocks (gathered and dequantized in the graph); other types become floats. */
  embedTokens(): Float32Array | QuantizedMatrix {
    const { dtype } = this.info('token_embd.weight');
    if (treatmentOf(dtype) === 'repacked') return this.linear('token_embd.weight') as QuantizedMatrix;
    return this.floats('token_embd.weight');
  }

  layer(index: number): GraphLayerWeights {
    const p = `blk.${index}.`;
    const { numHeads, numKvHeads } = this.shape;
    const bias = (name: string, heads: number) =>
      this.has(`${p}${name}.bias`) ? this.floats(`${p}${name}.bias`, this.permutedRotary && name !== 'attn_v' ? heads : undefined) : undefined;
    return {
      inputNorm: this.floats(`${p}attn_norm.weight`),
      qProj: this.linear(`${p}attn_q.weight`, numHeads),
      kProj: this.linear(`${p}attn_k.weight`, numKvHeads),
      vProj: this.linear(`${p}attn_v.weight`),
      oProj: this.linear(`${p}attn_output.weight`),
      postAttentionNorm: this.floats(`${p}ffn_norm.weight`),
      gateProj: this.linear(`${p}ffn_gate.weight`),
      upProj: this.linear(`${p}ffn_up.weight`),
      downProj: this.linear(`${p}ffn_down.weight`),
      qBias: bias('attn_q', numHeads),
      kBias: bias('attn_k', numKvHeads),
      vBias: bias('attn_v', numKvHeads),
    };
  }

  finalNorm(): Float32Array {
    return this.floats('output_norm.weight');
  }

  /** output.weight, or the token embedding when the model ties them (Qwen2.5-0.5B, Llama 3.2 1B). */
  lmHead(): LinearWeight {
    return this.linear(this.has('output.weight') ? 'output.weight' : 'token_embd.weight');
  }
}
