// Writes the builder's seeded Llama-family weights as a GGUF file (v3) the way llama.cpp's
// convert_hf_to_gguf.py lays them out: architecture `llama` (q/k rows permuted for its interleaved
// rotary) or `qwen2` (with q/k/v biases), tensors F32/F16/Q8_0/Q4_0 or a Q4_K_M-like mix, and
// either tokenizer kind, so the importer and llama.cpp are tested on the same file without a download.
import { open } from 'node:fs/promises';
import { GgmlType, ggmlByteSize, quantizeGgml } from '../../src/models/gguf-quants.js';
import type { GgufVocab } from './gguf-vocab.js';
import { type LlamaShape, seededNormal, seededWeightSource } from './weights.js';

export type GgufArchitecture = 'llama' | 'qwen2';
export type GgufFileType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0' | 'Q4_K_M';

export interface WriteGgufOptions {
  file: string;
  shape: LlamaShape;
  seed: number;
  architecture: GgufArchitecture;
  fileType: GgufFileType;
  vocab: GgufVocab;
  name?: string;
}

const ALIGNMENT = 32;
// general.file_type values (llama_ftype) for the metadata.
const FILE_TYPE_ID: Record<GgufFileType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, Q4_K_M: 15 };

type Value = { kind: 'u32' | 'i32' | 'f32' | 'bool' | 'string'; value: number | boolean | string } | { kind: 'array'; of: 'string' | 'f32' | 'i32'; values: (string | number)[] };

const VALUE_TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  push(buffer: Buffer): void {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(kind: 'u32' | 'i32' | 'f32' | 'bool' | 'string', value: number | boolean | string): void {
    const b = Buffer.alloc(kind === 'bool' ? 1 : 4);
    if (kind === 'string') return this.string(value as string);
    if (kind === 'u32') b.writeUInt32LE(value as number);
    else if (kind === 'i32') b.writeInt32LE(value as number);
    else if (kind === 'f32') b.writeFloatLE(value as number);
    else b.writeUInt8(value ? 1 : 0);
    this.push(b);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

interface TensorPlan {
  name: string;
  /** ggml order: ne[0] is the contiguous (input) dimension. */
  dims: number[];
  type: GgmlType;
  /** Row-major data, rows of dims[0] values. */
  data: () => Float32Array;
}

/** [in, out] row-major (y = x @ W) to GGUF's rows of inputs, one row per output. */
function transpose(weights: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(weights.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = weights[r * cols + c];
  return out;
}

/** convert_hf_to_gguf's LlamaModel.permute: within each head, rows [half, i] move to [i, half]. */
export function permuteRotaryRows(rowsData: Float32Array, heads: number, headDim: number, rowLength: number): Float32Array {
  const out = new Float32Array(rowsData.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let part = 0; part < 2; part++) {
      for (let i = 0; i < half; i++) {
        const from = (h * headDim + part * half + i) * rowLength;
        out.set(rowsData.subarray(from, from + rowLength), (h * headDim + 2 * i + part) * rowLength);
      }
    }
  }
  return out;
}

function matrixType(fileType: GgufFileType, tensor: string, rowLength: number): GgmlType {
  switch (fileType) {
    case 'F32':
      return GgmlType.F32;
    case 'F16':
      return GgmlType.F16;
    case 'Q8_0':
      return GgmlType.Q8_0;
    case 'Q4_0':
      return GgmlType.Q4_0;
    case 'Q4_K_M': {
      // As llama-quantize's Q4_K_M: the more sensitive attn_v, ffn_down and output in Q6_K; rows
      // that do not fill 256-value super-blocks fall back to Q8_0, as llama-quantize falls back too.
      const wanted = /attn_v|ffn_down|output\.weight/.test(tensor) ? GgmlType.Q6_K : GgmlType.Q4_K;
      return rowLength % 256 === 0 ? wanted : GgmlType.Q8_0;
    }
  }
}

function tensorPlans(opts: WriteGgufOptions): TensorPlan[] {
  const { shape, seed, architecture, fileType } = opts;
  const source = seededWeightSource(shape, seed);
  const { hiddenSize: e, numHeads: h, numKvHeads: kv, headDim: d, intermediateSize: inter, vocabSize } = shape;
  const matrix = (name: string, rows: number, cols: number, get: () => Float32Array): TensorPlan => ({
    name,
    dims: [cols, rows],
    type: matrixType(fileType, name, cols),
    data: get,
  });
  const vector = (name: string, get: () => Float32Array): TensorPlan => ({ name, dims: [get().length], type: GgmlType.F32, data: get });
  const plans: TensorPlan[] = [matrix('token_embd.weight', vocabSize, e, () => source.embedTokens())];
  // Tensors are written in order, so the layer being written is generated once.
  let cached: { index: number; weights: ReturnType<typeof source.layer> } | undefined;
  for (let i = 0; i < shape.numLayers; i++) {
    const layer = () => {
      if (cached?.index !== i) cached = { index: i, weights: source.layer(i) };
      return cached.weights;
    };
    const p = `blk.${i}.`;
    // GGUF rows are outputs: the builder's [in, out] matrices transposed.
    const rows = (w: Float32Array, k: number, n: number) => transpose(w, k, n);
    const q = () => rows(layer().qProj, e, h * d);
    const k = () => rows(layer().kProj, e, kv * d);
    plans.push(
      vector(`${p}attn_norm.weight`, () => layer().inputNorm),
      matrix(`${p}attn_q.weight`, h * d, e, architecture === 'llama' ? () => permuteRotaryRows(q(), h, d, e) : q),
      matrix(`${p}attn_k.weight`, kv * d, e, architecture === 'llama' ? () => permuteRotaryRows(k(), kv, d, e) : k),
      matrix(`${p}attn_v.weight`, kv * d, e, () => rows(layer().vProj, e, kv * d)),
      matrix(`${p}attn_output.weight`, e, h * d, () => rows(layer().oProj, h * d, e)),
      vector(`${p}ffn_norm.weight`, () => layer().postAttentionNorm),
      matrix(`${p}ffn_gate.weight`, inter, e, () => rows(layer().gateProj, e, inter)),
      matrix(`${p}ffn_up.weight`, inter, e, () => rows(layer().upProj, e, inter)),
      matrix(`${p}ffn_down.weight`, e, inter, () => rows(layer().downProj, inter, e)),
    );
    if (architecture === 'qwen2') {
      // Qwen2 has q/k/v biases; seeded here because the builder's Llama weights have none.
      for (const [kind, size] of [['q', h * d], ['k', kv * d], ['v', kv * d]] as const) {
        plans.push(vector(`${p}attn_${kind}.bias`, () => seededNormal(seed, `layers.${i}.${kind}_bias`, size, 0, 0.02)));
      }
    }
  }
  plans.push(vector('output_norm.weight', () => source.finalNorm()));
  // Tied embeddings: no output.weight, llama.cpp then reuses token_embd, as Qwen2.5-0.5B's files do.
  if (!shape.tieWordEmbeddings) plans.push(matrix('output.weight', vocabSize, e, () => transpose(source.lmHead(), e, vocabSize)));
  return plans;
}

function metadata(opts: WriteGgufOptions): [string, Value][] {
  const { shape, architecture: a, vocab } = opts;
  const entries: [string, Value][] = [
    ['general.architecture', { kind: 'string', value: a }],
    ['general.name', { kind: 'string', value: opts.name ?? `aigw-${a}` }],
    ['general.file_type', { kind: 'u32', value: FILE_TYPE_ID[opts.fileType] }],
    ['general.alignment', { kind: 'u32', value: ALIGNMENT }],
    [`${a}.context_length`, { kind: 'u32', value: shape.contextLength }],
    [`${a}.embedding_length`, { kind: 'u32', value: shape.hiddenSize }],
    [`${a}.block_count`, { kind: 'u32', value: shape.numLayers }],
    [`${a}.feed_forward_length`, { kind: 'u32', value: shape.intermediateSize }],
    [`${a}.attention.head_count`, { kind: 'u32', value: shape.numHeads }],
    [`${a}.attention.head_count_kv`, { kind: 'u32', value: shape.numKvHeads }],
    [`${a}.attention.layer_norm_rms_epsilon`, { kind: 'f32', value: shape.rmsNormEps }],
    [`${a}.rope.freq_base`, { kind: 'f32', value: shape.ropeTheta }],
    [`${a}.rope.dimension_count`, { kind: 'u32', value: shape.headDim }],
    ['tokenizer.ggml.model', { kind: 'string', value: vocab.model }],
    ['tokenizer.ggml.tokens', { kind: 'array', of: 'string', values: vocab.tokens }],
    ['tokenizer.ggml.token_type', { kind: 'array', of: 'i32', values: vocab.tokenTypes }],
    ['tokenizer.ggml.bos_token_id', { kind: 'u32', value: vocab.bosTokenId }],
    ['tokenizer.ggml.eos_token_id', { kind: 'u32', value: vocab.eosTokenId }],
    ['tokenizer.ggml.add_bos_token', { kind: 'bool', value: vocab.addBos }],
    ['tokenizer.chat_template', { kind: 'string', value: vocab.chatTemplate }],
  ];
  if (vocab.pre !== undefined) entries.push(['tokenizer.ggml.pre', { kind: 'string', value: vocab.pre }]);
  if (vocab.scores) entries.push(['tokenizer.ggml.scores', { kind: 'array', of: 'f32', values: vocab.scores }]);
  if (vocab.merges) entries.push(['tokenizer.ggml.merges', { kind: 'array', of: 'string', values: vocab.merges }]);
  if (vocab.padTokenId !== undefined) entries.push(['tokenizer.ggml.padding_token_id', { kind: 'u32', value: vocab.padTokenId }]);
  if (vocab.unknownTokenId !== undefined) entries.push(['tokenizer.ggml.unknown_token_id', { kind: 'u32', value: vocab.unknownTokenId }]);
  return entries;
}

function padTo(offset: number): number {
  return Math.ceil(offset / ALIGNMENT) * ALIGNMENT;
}

/** Writes the GGUF file; tensors are encoded one at a time, so memory stays at one tensor. */
export async function writeGgufModel(opts: WriteGgufOptions): Promise<void> {
  if (opts.vocab.tokens.length !== opts.shape.vocabSize) {
    throw new RangeError(`the vocabulary has ${opts.vocab.tokens.length} tokens, the shape ${opts.shape.vocabSize}`);
  }
  const plans = tensorPlans(opts);
  const entries = metadata(opts);
  const header = new ByteSink();
  header.push(Buffer.from('GGUF', 'ascii'));
  header.u32(3);
  header.u64(plans.length);
  header.u64(entries.length);
  for (const [key, value] of entries) {
    header.string(key);
    header.u32(VALUE_TYPE[value.kind]);
    if (value.kind === 'array') {
      header.u32(VALUE_TYPE[value.of]);
      header.u64(value.values.length);
      for (const item of value.values) header.scalar(value.of, item);
    } else {
      header.scalar(value.kind, value.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const plan of plans) {
    offsets.push(offset);
    header.string(plan.name);
    header.u32(plan.dims.length);
    for (const dim of plan.dims) header.u64(dim);
    header.u32(plan.type);
    header.u64(offset);
    offset = padTo(offset + ggmlByteSize(plan.type, plan.dims.reduce((a, b) => a * b, 1)));
  }
  const headerBytes = header.toBuffer();
  const dataStart = padTo(headerBytes.length);
  const handle = await open(opts.file, 'w');
  try {
    await handle.write(headerBytes, 0, headerBytes.length, 0);
    for (const [i, plan] of plans.entries()) {
      const encoded = quantizeGgml(plan.type, plan.data());
      await handle.write(encoded, 0, encoded.length, dataStart + offsets[i]);
    }
    // The last tensor's padding is part of the file, as ggml's writer leaves it.
    await handle.truncate(dataStart + offset);
  } finally {
    await handle.close();
  }
}
