// The GraphProto of a Llama-family decoder in one of two public export layouts: Hugging Face
// Optimum / transformers.js (plain ONNX ops, growing KV cache) or onnxruntime-genai (GroupQueryAttention).
import { GraphBuilder } from './graph-builder.js';
import { DataType, type ExternalDataWriter, type GraphProto, attrFloat, attrInt, attrInts, valueInfo } from './onnx-writer.js';
import { type QuantBits, QUANT_BLOCK_SIZE, type QuantizedMatrix, quantizeMatrix } from './quantize.js';
import type { LlamaShape } from './weights.js';

export type ModelLayout = 'optimum' | 'genai';
export type ModelPrecision = 'fp32' | 'int8' | 'int4';

export interface LlamaGraphOptions {
  layout: ModelLayout;
  precision: ModelPrecision;
  /** Gather the last position before the final norm and lm_head: logits [batch, 1, vocab]. Default true. */
  lastTokenLogitsOnly?: boolean;
  /** MatMulNBits accuracy_level (0 = compute in fp32, 4 = int8 activations). Default 0. */
  accuracyLevel?: number;
  /** Input and output types as real exports vary them (defaults: int64 ids, position_ids, float32 KV and logits). */
  io?: ExportIoVariant;
  /** false keeps lm_head fp32 in a quantized model, as many published int4 exports do. Default true. */
  quantizeLmHead?: boolean;
  /**
   * genai only: GroupQueryAttention (default; rotary inside, KV heads as the model has them) or
   * MultiHeadAttention, as onnxruntime-genai's builder.py writes for some exports: rotary by
   * RotaryEmbedding, KV heads repeated to the query heads, a growing cache of past + new.
   */
  attention?: 'GroupQueryAttention' | 'MultiHeadAttention';
}

/** The graph-facing facts that differ between real exports of the same model. */
export interface ExportIoVariant {
  /** Element type of input_ids and attention_mask. */
  idsType?: 'int64' | 'int32';
  /** Optimum only: false drops the position_ids input (positions then follow the past length). */
  positionIds?: boolean;
  /** Optimum only: float16 past/present tensors (the attention itself runs in float32). */
  kvType?: 'float32' | 'float16';
  logitsType?: 'float32' | 'float16';
}

/** A projection: row-major [in, out] floats (quantized per the precision), or already quantized (e.g. repacked GGUF blocks). */
export type LinearWeight = Float32Array | QuantizedMatrix;

/** One layer as the graph takes it: the seeded LlamaLayerWeights fit, and imported models may bring biases (Qwen2's q/k/v). */
export interface GraphLayerWeights {
  inputNorm: Float32Array;
  qProj: LinearWeight;
  kProj: LinearWeight;
  vProj: LinearWeight;
  oProj: LinearWeight;
  postAttentionNorm: Float32Array;
  gateProj: LinearWeight;
  upProj: LinearWeight;
  downProj: LinearWeight;
  qBias?: Float32Array;
  kBias?: Float32Array;
  vBias?: Float32Array;
}

/** What the graph reads, one piece at a time; LlamaWeightSource (seeded weights) is one. */
export interface GraphWeightSource {
  shape: LlamaShape;
  embedTokens(): Float32Array;
  layer(index: number): GraphLayerWeights;
  finalNorm(): Float32Array;
  lmHead(): LinearWeight;
  /** Llama 3.1-style rotary frequency divisors [headDim/2] (GGUF rope_freqs); absent means none. */
  ropeFreqFactors?: Float32Array;
}

export class LlamaGraphError extends Error {
  override name = 'LlamaGraphError';
}

const BITS: Record<ModelPrecision, QuantBits | undefined> = { fp32: undefined, int8: 8, int4: 4 };
// HF masks with the most negative float32: a fully masked row then softmaxes to uniform, never NaN.
const MASK_MIN = -3.4028234663852886e38;

/** Rotary tables [contextLength, headDim/2]: angle = p * theta^(-2i/headDim) / freqFactors[i], computed in float64. */
export function rotaryTables(shape: LlamaShape, freqFactors?: Float32Array): { cos: Float32Array; sin: Float32Array } {
  const half = shape.headDim / 2;
  const cos = new Float32Array(shape.contextLength * half);
  const sin = new Float32Array(shape.contextLength * half);
  for (let p = 0; p < shape.contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = (p * Math.pow(shape.ropeTheta, (-2 * i) / shape.headDim)) / (freqFactors?.[i] ?? 1);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

export function validateShape(shape: LlamaShape): void {
  const problems: string[] = [];
  for (const [name, k] of [
    ['hiddenSize', shape.hiddenSize],
    ['numHeads*headDim', shape.numHeads * shape.headDim],
    ['intermediateSize', shape.intermediateSize],
  ] as const) {
    if (k % QUANT_BLOCK_SIZE !== 0) problems.push(`${name}=${k} is not a multiple of ${QUANT_BLOCK_SIZE}`);
  }
  if (shape.numHeads % shape.numKvHeads !== 0) problems.push('numHeads must be a multiple of numKvHeads');
  // GroupQueryAttention with rotary requires head_size % 16 == 0.
  if (shape.headDim % 16 !== 0) problems.push(`headDim=${shape.headDim} is not a multiple of 16`);
  if (problems.length > 0) throw new LlamaGraphError(`invalid Llama shape: ${problems.join('; ')}`);
}

class LlamaGraph {
  readonly g: GraphBuilder;
  private readonly shape: LlamaShape;
  private readonly bits: QuantBits | undefined;

  constructor(
    private readonly weights: GraphWeightSource,
    readonly options: LlamaGraphOptions,
    external: ExternalDataWriter,
  ) {
    this.shape = weights.shape;
    this.bits = BITS[options.precision];
    this.g = new GraphBuilder(`llama-${options.layout}-${options.precision}`, external);
  }

  /** x @ W (+ bias) for a [k, n] weight: MatMul in fp32 (or when told not to quantize), MatMulNBits when quantized here or before. */
  linear(x: string, name: string, weight: LinearWeight, k: number, n: number, bias?: Float32Array, quantize = true): string {
    const g = this.g;
    const product = weight instanceof Float32Array && (this.bits === undefined || !quantize)
      ? g.op1('MatMul', [x, g.weight(`${name}.weight`, [k, n], weight)])
      : this.matMulNBits(x, name, weight instanceof Float32Array ? quantizeMatrix(weight, k, n, this.bits!) : weight, k, n);
    return bias === undefined ? product : g.op1('Add', [product, g.weight(`${name}.bias`, [n], bias)]);
  }

  private matMulNBits(x: string, name: string, q: QuantizedMatrix, k: number, n: number): string {
    const g = this.g;
    if (q.k !== k || q.n !== n || q.blockSize !== QUANT_BLOCK_SIZE) {
      throw new LlamaGraphError(`${name}: quantized weight is [${q.k}, ${q.n}] block ${q.blockSize}, the graph needs [${k}, ${n}] block ${QUANT_BLOCK_SIZE}`);
    }
    const blocks = k / QUANT_BLOCK_SIZE;
    const b = g.initializer(`${name}.weight_Q${q.bits}`, DataType.UINT8, [n, blocks, q.data.length / (n * blocks)], q.data);
    const scales = g.initializer(`${name}.weight_scales`, DataType.FLOAT, [n * blocks], q.scales);
    return g.op1('MatMulNBits', [x, b, scales], {
      domain: 'com.microsoft',
      attrs: [
        attrInt('K', k),
        attrInt('N', n),
        attrInt('bits', q.bits),
        attrInt('block_size', QUANT_BLOCK_SIZE),
        attrInt('accuracy_level', this.options.accuracyLevel ?? 0),
      ],
    });
  }

  /**
   * One x @ [W1 | W2 | ...] for projections of the same input, whose outputs lie side by side
   * (columns of the parts in order); undefined when the parts can't be one matrix (different bits).
   */
  linearPacked(x: string, name: string, parts: readonly { weight: LinearWeight; n: number; bias?: Float32Array }[], k: number): string | undefined {
    const packed = packColumns(parts, k);
    if (packed === undefined) return undefined;
    const n = parts.reduce((sum, p) => sum + p.n, 0);
    const biases = parts.some((p) => p.bias) ? concatFloats(parts.map((p) => p.bias ?? new Float32Array(p.n))) : undefined;
    return this.linear(x, name, packed, k, n, biases);
  }

  rmsNorm(x: string, name: string, weight: Float32Array): string {
    const g = this.g;
    return g.scope(name, () => {
      const squared = g.op1('Pow', [x, g.float([2], [])]);
      const meanSquare = g.op1('ReduceMean', [squared], { attrs: [attrInts('axes', [-1]), attrInt('keepdims', 1)] });
      const rms = g.op1('Sqrt', [g.op1('Add', [meanSquare, g.float([this.shape.rmsNormEps], [])])]);
      return g.op1('Mul', [g.op1('Div', [x, rms]), g.weight(`${name}.weight`, [this.shape.hiddenSize], weight)]);
    });
  }

  mlp(x: string, prefix: string, layer: GraphLayerWeights): string {
    const g = this.g;
    const { hiddenSize: e, intermediateSize: inter } = this.shape;
    return g.scope('mlp', () => {
      // Gate and up stay two products: packed into one and split after, they measured no faster.
      const gate = this.linear(x, `${prefix}.mlp.gate_proj`, layer.gateProj, e, inter);
      const up = this.linear(x, `${prefix}.mlp.up_proj`, layer.upProj, e, inter);
      const silu = g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]);
      return this.linear(g.op1('Mul', [silu, up]), `${prefix}.mlp.down_proj`, layer.downProj, inter, e);
    });
  }

  /** Final norm and lm_head, optionally on the last position only; writes graph output `logits`. */
  head(x: string): void {
    const g = this.g;
    const last = this.options.lastTokenLogitsOnly ?? true;
    const hidden = last
      ? g.op1('Slice', [x, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])])
      : x;
    const normed = this.rmsNorm(hidden, 'model.norm', this.weights.finalNorm());
    const { hiddenSize, vocabSize } = this.shape;
    const quantizeHead = this.options.quantizeLmHead ?? true;
    // Tied and fp32: lm_head multiplies by the embedding table transposed, one copy of the weights in the file.
    const logits =
      this.shape.tieWordEmbeddings && (this.bits === undefined || !quantizeHead)
        ? g.op1('MatMul', [normed, g.op1('Transpose', [this.embedTable!], { attrs: [attrInts('perm', [1, 0])] })])
        : this.linear(normed, 'lm_head', this.weights.lmHead(), hiddenSize, vocabSize, undefined, quantizeHead);
    const float16 = this.options.io?.logitsType === 'float16';
    const typed = float16 ? g.op1('Cast', [logits], { attrs: [attrInt('to', DataType.FLOAT16)] }) : logits;
    g.op1('Identity', [typed], { output: 'logits' });
    g.outputs.unshift(
      valueInfo('logits', float16 ? DataType.FLOAT16 : DataType.FLOAT, ['batch_size', last ? 1 : 'sequence_length', vocabSize]),
    );
  }

  private embedTable: string | undefined;

  embed(): string {
    const { vocabSize, hiddenSize } = this.shape;
    this.embedTable = this.g.weight('model.embed_tokens.weight', [vocabSize, hiddenSize], this.weights.embedTokens());
    return this.g.op1('Gather', [this.embedTable, 'input_ids'], { attrs: [attrInt('axis', 0)] });
  }

  get idsType(): typeof DataType.INT64 | typeof DataType.INT32 {
    return this.options.io?.idsType === 'int32' ? DataType.INT32 : DataType.INT64;
  }

  get kvType(): typeof DataType.FLOAT | typeof DataType.FLOAT16 {
    return this.options.io?.kvType === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  }

  kvInputsAndOutputs(pastSeq: string, heads = this.shape.numKvHeads): void {
    const { headDim, numLayers } = this.shape;
    for (let i = 0; i < numLayers; i++) {
      for (const kind of ['key', 'value']) {
        this.g.inputs.push(valueInfo(`past_key_values.${i}.${kind}`, this.kvType, ['batch_size', heads, pastSeq, headDim]));
        this.g.outputs.push(
          valueInfo(`present.${i}.${kind}`, this.kvType, ['batch_size', heads, 'total_sequence_length', headDim]),
        );
      }
    }
  }
}

/** [k, n1] | [k, n2] | ... as one [k, n1+n2+...] weight, float or quantized alike; undefined for a mix. */
function packColumns(parts: readonly { weight: LinearWeight; n: number }[], k: number): LinearWeight | undefined {
  const weights = parts.map((p) => p.weight);
  if (weights.every((w): w is Float32Array => w instanceof Float32Array)) {
    const n = parts.reduce((sum, p) => sum + p.n, 0);
    const out = new Float32Array(k * n);
    for (let row = 0; row < k; row++) {
      let column = row * n;
      for (const [i, w] of weights.entries()) {
        const width = parts[i]!.n;
        out.set(w.subarray(row * width, (row + 1) * width), column);
        column += width;
      }
    }
    return out;
  }
  const quantized = weights.filter((w): w is QuantizedMatrix => !(w instanceof Float32Array));
  const first = quantized[0]!;
  if (quantized.length !== weights.length || quantized.some((q) => q.bits !== first.bits || q.blockSize !== first.blockSize || q.k !== k)) return undefined;
  // MatMulNBits stores column by column, so the parts' bytes and scales simply follow each other.
  return {
    k,
    n: quantized.reduce((sum, q) => sum + q.n, 0),
    bits: first.bits,
    blockSize: first.blockSize,
    data: concatBytes(quantized.map((q) => q.data)),
    scales: concatFloats(quantized.map((q) => q.scales)),
  };
}

function concatFloats(parts: readonly Float32Array[]): Float32Array {
  return concatInto(new Float32Array(parts.reduce((sum, p) => sum + p.length, 0)), parts);
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return concatInto(new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0)), parts);
}

function concatInto<T extends Float32Array | Uint8Array>(out: T, parts: readonly T[]): T {
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function buildOptimum(lg: LlamaGraph, shape: LlamaShape, weights: GraphWeightSource): void {
  const g = lg.g;
  const { numHeads: h, numKvHeads: kv, headDim: d, hiddenSize: e } = shape;
  const group = h / kv;
  const withPositions = lg.options.io?.positionIds ?? true;
  g.inputs.push(
    valueInfo('input_ids', lg.idsType, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', lg.idsType, ['batch_size', 'total_sequence_length']),
  );
  if (withPositions) g.inputs.push(valueInfo('position_ids', lg.idsType, ['batch_size', 'sequence_length']));
  lg.kvInputsAndOutputs('past_sequence_length');
  const float16Kv = lg.kvType === DataType.FLOAT16;

  // Additive mask [batch, 1, 1, seq, total]: query i (absolute position past+i) sees keys 0..past+i
  // that the attention mask does not mark as padding.
  const mask = g.scope('attention_mask', () => {
    const zero = g.int64([0], []);
    const one = g.int64([1], []);
    const seqLen = g.op1('Gather', [g.op1('Shape', ['input_ids']), one], { attrs: [attrInt('axis', 0)] });
    const pastLen = g.op1('Gather', [g.op1('Shape', ['past_key_values.0.key']), g.int64([2], [])], {
      attrs: [attrInt('axis', 0)],
    });
    const totalLen = g.op1('Add', [pastLen, seqLen]);
    const queryPos = g.op1('Unsqueeze', [g.op1('Range', [pastLen, totalLen, one]), g.int64([1])]);
    const keyPos = g.op1('Unsqueeze', [g.op1('Range', [zero, totalLen, one]), g.int64([0])]);
    const causal = g.op1('LessOrEqual', [keyPos, queryPos]);
    const notPadding = g.op1('Unsqueeze', [g.op1('Cast', ['attention_mask'], { attrs: [attrInt('to', DataType.BOOL)] }), g.int64([1, 2, 3])]);
    const allowed = g.op1('And', [causal, notPadding]);
    const additive = g.op1('Where', [allowed, g.float([0], []), g.float([MASK_MIN], [])]);
    // Without a position_ids input, positions are past_length + i (a single unpadded sequence).
    return { additive, queryPositions: g.op1('Unsqueeze', [g.op1('Range', [pastLen, totalLen, one]), g.int64([0])]) };
  });
  const positions = withPositions ? 'position_ids' : mask.queryPositions;

  // cos/sin [batch, 1, seq, headDim] from position_ids, rotate_half layout (the half table repeated).
  const tables = rotaryTables(shape, weights.ropeFreqFactors);
  const [cos, sin] = g.scope('rotary', () =>
    (['cos', 'sin'] as const).map((kind) => {
      const table = g.weight(`${kind}_cache`, [shape.contextLength, d / 2], tables[kind]);
      const half = g.op1('Gather', [table, positions], { attrs: [attrInt('axis', 0)] });
      const full = g.op1('Concat', [half, half], { attrs: [attrInt('axis', -1)] });
      return g.op1('Unsqueeze', [full, g.int64([1])]);
    }),
  );
  const rope = (t: string): string => {
    const [first, second] = g.op('Split', [t], { attrs: [attrInt('axis', -1)], outputs: 2 });
    const rotated = g.op1('Concat', [g.op1('Neg', [second]), first], { attrs: [attrInt('axis', -1)] });
    return g.op1('Add', [g.op1('Mul', [t, cos]), g.op1('Mul', [rotated, sin])]);
  };
  const toHeads = (t: string, heads: number): string =>
    g.op1('Transpose', [g.op1('Reshape', [t, g.int64([0, 0, heads, d])])], { attrs: [attrInts('perm', [0, 2, 1, 3])] });

  let x = lg.embed();
  for (let i = 0; i < shape.numLayers; i++) {
    const layer = weights.layer(i);
    const prefix = `model.layers.${i}`;
    x = g.scope(`layers.${i}`, () => {
      const normed = lg.rmsNorm(x, `${prefix}.input_layernorm`, layer.inputNorm);
      const attention = g.scope('attn', () => {
        const q = rope(toHeads(lg.linear(normed, `${prefix}.self_attn.q_proj`, layer.qProj, e, h * d, layer.qBias), h));
        const k = rope(toHeads(lg.linear(normed, `${prefix}.self_attn.k_proj`, layer.kProj, e, kv * d, layer.kBias), kv));
        const v = toHeads(lg.linear(normed, `${prefix}.self_attn.v_proj`, layer.vProj, e, kv * d, layer.vBias), kv);
        const toCache = (t: string) => (float16Kv ? g.op1('Cast', [t], { attrs: [attrInt('to', DataType.FLOAT16)] }) : t);
        const fromCache = (t: string) => (float16Kv ? g.op1('Cast', [t], { attrs: [attrInt('to', DataType.FLOAT)] }) : t);
        const keys = fromCache(
          g.op1('Concat', [`past_key_values.${i}.key`, toCache(k)], { attrs: [attrInt('axis', 2)], output: `present.${i}.key` }),
        );
        const values = fromCache(
          g.op1('Concat', [`past_key_values.${i}.value`, toCache(v)], { attrs: [attrInt('axis', 2)], output: `present.${i}.value` }),
        );
        // GQA without copying KV heads: queries grouped [b, kv, group, s, d] broadcast against [b, kv, 1, t, d].
        const grouped = g.op1('Reshape', [q, g.int64([0, kv, group, -1, d])]);
        const keys5 = g.op1('Unsqueeze', [keys, g.int64([2])]);
        const keysT = g.op1('Transpose', [keys5], { attrs: [attrInts('perm', [0, 1, 2, 4, 3])] });
        const scores = g.op1('Mul', [g.op1('MatMul', [grouped, keysT]), g.float([1 / Math.sqrt(d)], [])]);
        const probs = g.op1('Softmax', [g.op1('Add', [scores, mask.additive])], { attrs: [attrInt('axis', -1)] });
        const context = g.op1('MatMul', [probs, g.op1('Unsqueeze', [values, g.int64([2])])]);
        const heads = g.op1('Reshape', [context, g.int64([0, h, -1, d])]);
        const merged = g.op1('Reshape', [
          g.op1('Transpose', [heads], { attrs: [attrInts('perm', [0, 2, 1, 3])] }),
          g.int64([0, 0, h * d]),
        ]);
        return lg.linear(merged, `${prefix}.self_attn.o_proj`, layer.oProj, h * d, e);
      });
      const afterAttention = g.op1('Add', [x, attention]);
      const normed2 = lg.rmsNorm(afterAttention, `${prefix}.post_attention_layernorm`, layer.postAttentionNorm);
      return g.op1('Add', [afterAttention, lg.mlp(normed2, prefix, layer)]);
    });
  }
  lg.head(x);
}

function buildGenai(lg: LlamaGraph, shape: LlamaShape, weights: GraphWeightSource): void {
  const g = lg.g;
  const { numHeads: h, numKvHeads: kv, headDim: d, hiddenSize: e } = shape;
  if (lg.options.io?.kvType === 'float16' || lg.options.io?.positionIds === false) {
    throw new LlamaGraphError('the genai layout takes no position_ids and keeps a float32 KV cache in this builder');
  }
  g.inputs.push(
    valueInfo('input_ids', lg.idsType, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', lg.idsType, ['batch_size', 'total_sequence_length']),
  );
  const mha = lg.options.attention === 'MultiHeadAttention';
  lg.kvInputsAndOutputs('past_sequence_length', mha ? h : kv);

  // GroupQueryAttention: the lengths it takes instead of a mask.
  const [seqlensK, totalSeqLen] = mha ? ['', ''] : g.scope('attn_mask_reformat', () => {
    const mask = lg.idsType === DataType.INT32 ? g.op1('Cast', ['attention_mask'], { attrs: [attrInt('to', DataType.INT64)] }) : 'attention_mask';
    const lengths = g.op1('ReduceSum', [mask, g.int64([1])], { attrs: [attrInt('keepdims', 0)] });
    const seqlens = g.op1('Cast', [g.op1('Sub', [lengths, g.int64([1], [])])], { attrs: [attrInt('to', DataType.INT32)] });
    const total = g.op1('Gather', [g.op1('Shape', [mask]), g.int64([1], [])], { attrs: [attrInt('axis', 0)] });
    return [seqlens, g.op1('Cast', [total], { attrs: [attrInt('to', DataType.INT32)] })];
  });
  const tables = rotaryTables(shape, weights.ropeFreqFactors);
  const cosCache = g.weight('cos_cache', [shape.contextLength, d / 2], tables.cos);
  const sinCache = g.weight('sin_cache', [shape.contextLength, d / 2], tables.sin);
  // MultiHeadAttention: positions past..total-1 of the one unpadded sequence, [1, sequence].
  const positions = mha
    ? g.scope('positions', () => {
        const total = g.op1('Gather', [g.op1('Shape', ['attention_mask']), g.int64([1], [])], { attrs: [attrInt('axis', 0)] });
        const length = g.op1('Gather', [g.op1('Shape', ['input_ids']), g.int64([1], [])], { attrs: [attrInt('axis', 0)] });
        const range = g.op1('Range', [g.op1('Sub', [total, length]), total, g.int64([1], [])]);
        return g.op1('Unsqueeze', [range, g.int64([0])]);
      })
    : '';
  const rotary = (t: string) => g.op1('RotaryEmbedding', [t, positions, cosCache, sinCache], { domain: 'com.microsoft', attrs: [attrInt('interleaved', 0)] });
  // [batch, seq, kv * d] -> [batch, seq, h * d]: each KV head once per query head of its group.
  const repeatKv = (t: string) => {
    if (h === kv) return t;
    const heads = g.op1('Unsqueeze', [g.op1('Reshape', [t, g.int64([0, 0, kv, d])]), g.int64([3])]);
    return g.op1('Reshape', [g.op1('Expand', [heads, g.int64([1, 1, kv, h / kv, d])]), g.int64([0, 0, h * d])]);
  };

  // The residual stream as onnxruntime-genai's builder writes it: each residual Add fused with the
  // RMSNorm after it (SkipSimplifiedLayerNormalization, whose 4th output is the sum). Written as an
  // Add and a norm, onnxruntime's own fusions leave them two nodes (its profiler counts them).
  let residual = lg.embed();
  let pending: string | undefined; // the last layer's MLP output, not yet added to the residual
  const addAndNorm = (delta: string | undefined, name: string, weight: Float32Array): string => {
    if (delta === undefined) return lg.rmsNorm(residual, name, weight);
    const [normed, , , sum] = g.op('SkipSimplifiedLayerNormalization', [delta, residual, g.weight(`${name}.weight`, [e], weight)], {
      domain: 'com.microsoft',
      outputs: [g.fresh('SkipSimplifiedLayerNormalization_out'), '', '', g.fresh('residual')],
      attrs: [attrFloat('epsilon', shape.rmsNormEps)],
    });
    residual = sum!;
    return normed!;
  };
  for (let i = 0; i < shape.numLayers; i++) {
    const layer = weights.layer(i);
    const prefix = `model.layers.${i}`;
    pending = g.scope(`layers.${i}`, () => {
      const normed = addAndNorm(pending, `${prefix}.input_layernorm`, layer.inputNorm);
      const attention = g.scope('attn', () => {
        // GroupQueryAttention takes q, k and v packed in one tensor (key and value left empty), so one
        // product serves all three, as onnxruntime-genai's builder writes it.
        const qkv = mha
          ? undefined
          : lg.linearPacked(normed, `${prefix}.self_attn.qkv_proj`, [
              { weight: layer.qProj, n: h * d, bias: layer.qBias },
              { weight: layer.kProj, n: kv * d, bias: layer.kBias },
              { weight: layer.vProj, n: kv * d, bias: layer.vBias },
            ], e);
        const [q, k, v] = qkv !== undefined
          ? [qkv, '', '']
          : [
              lg.linear(normed, `${prefix}.self_attn.q_proj`, layer.qProj, e, h * d, layer.qBias),
              lg.linear(normed, `${prefix}.self_attn.k_proj`, layer.kProj, e, kv * d, layer.kBias),
              lg.linear(normed, `${prefix}.self_attn.v_proj`, layer.vProj, e, kv * d, layer.vBias),
            ];
        const past = [`past_key_values.${i}.key`, `past_key_values.${i}.value`];
        const present = [`present.${i}.key`, `present.${i}.value`];
        const [context] = mha
          ? g.op('MultiHeadAttention', [rotary(q), repeatKv(rotary(k)), repeatKv(v), '', '', '', ...past], {
              domain: 'com.microsoft',
              outputs: [g.fresh('MultiHeadAttention_out'), ...present],
              attrs: [attrInt('num_heads', h), attrFloat('scale', 1 / Math.sqrt(d)), attrInt('unidirectional', 1)],
            })
          : g.op('GroupQueryAttention', [q, k, v, ...past, seqlensK, totalSeqLen, cosCache, sinCache], {
              domain: 'com.microsoft',
              outputs: [g.fresh('GroupQueryAttention_out'), ...present],
              attrs: [
                attrInt('num_heads', h),
                attrInt('kv_num_heads', kv),
                attrFloat('scale', 1 / Math.sqrt(d)),
                attrInt('do_rotary', 1),
                attrInt('rotary_interleaved', 0),
                attrInt('local_window_size', -1),
              ],
            });
        return lg.linear(context, `${prefix}.self_attn.o_proj`, layer.oProj, h * d, e);
      });
      return lg.mlp(addAndNorm(attention, `${prefix}.post_attention_layernorm`, layer.postAttentionNorm), prefix, layer);
    });
  }
  // One plain Add at the end: the head keeps only the last position before its norm.
  lg.head(pending === undefined ? residual : g.op1('Add', [residual, pending]));
}

/**
 * Builds the decoder graph, streaming every large initializer to `external` as it goes (one layer of
 * weights in memory at a time).
 */
export function buildLlamaGraph(weights: GraphWeightSource, options: LlamaGraphOptions, external: ExternalDataWriter): GraphProto {
  validateShape(weights.shape);
  const lg = new LlamaGraph(weights, options, external);
  if (options.layout === 'optimum') buildOptimum(lg, weights.shape, weights);
  else buildGenai(lg, weights.shape, weights);
  return lg.g.toGraph();
}
