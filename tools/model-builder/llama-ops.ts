// The pieces both export layouts share: the public graph options and weight interfaces, and
// LlamaGraph, the ops a layer is made of (projections, RMSNorm, the MLP, the head, the KV inputs).
import { GraphBuilder } from './graph-builder.js';
import { DataType, type ExternalDataWriter, attrInt, attrInts, valueInfo } from './onnx-writer.js';
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
  /** Row-major [vocab, hidden] floats, or rows already quantized (k = hidden, n = vocab: GGUF's Q4_0/Q8_0 blocks). */
  embedTokens(): Float32Array | QuantizedMatrix;
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
export const MASK_MIN = -3.4028234663852886e38;

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

export class LlamaGraph {
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
    checkQuantizedShape(name, q, k, n);
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
    const sharedTable = this.shape.tieWordEmbeddings && (this.bits === undefined || !quantizeHead);
    if (sharedTable && this.embedTable === undefined) throw new LlamaGraphError('a tied fp32 lm_head needs a float embedding table');
    const logits = sharedTable
      ? g.op1('MatMul', [normed, g.op1('Transpose', [this.embedTable!], { attrs: [attrInts('perm', [1, 0])] })])
      : this.linear(normed, 'lm_head', this.weights.lmHead(), hiddenSize, vocabSize, undefined, quantizeHead);
    const float16 = this.options.io?.logitsType === 'float16';
    const typed = float16 ? g.op1('Cast', [logits], { attrs: [attrInt('to', DataType.FLOAT16)] }) : logits;
    g.op1('Identity', [typed], { output: 'logits' });
    g.outputs.unshift(
      valueInfo('logits', float16 ? DataType.FLOAT16 : DataType.FLOAT, ['batch_size', last ? 1 : 'sequence_length', vocabSize]),
    );
  }

  /** The float embedding table's initializer, which a tied fp32 lm_head reads transposed. */
  private embedTable: string | undefined;

  embed(): string {
    const g = this.g;
    const { vocabSize, hiddenSize } = this.shape;
    const table = this.weights.embedTokens();
    if (table instanceof Float32Array) {
      this.embedTable = g.weight('model.embed_tokens.weight', [vocabSize, hiddenSize], table);
      return g.op1('Gather', [this.embedTable, 'input_ids'], { attrs: [attrInt('axis', 0)] });
    }
    // Quantized rows (GGUF's Q4_0/Q8_0 blocks as they come) are gathered and dequantized row by row:
    // the same floats as a dequantized table, in about a sixth (4 bits) or under a third (8 bits) of
    // its bytes, scales included.
    const name = 'model.embed_tokens';
    checkQuantizedShape(name, table, hiddenSize, vocabSize);
    const data = g.initializer(`${name}.weight_Q${table.bits}`, DataType.UINT8, [vocabSize, (hiddenSize * table.bits) / 8], table.data);
    const scales = g.initializer(`${name}.weight_scales`, DataType.FLOAT, [vocabSize, hiddenSize / QUANT_BLOCK_SIZE], table.scales);
    return g.op1('GatherBlockQuantized', [data, 'input_ids', scales], {
      domain: 'com.microsoft',
      attrs: [attrInt('gather_axis', 0), attrInt('quantize_axis', 1), attrInt('block_size', QUANT_BLOCK_SIZE), attrInt('bits', table.bits)],
    });
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

/** Quantized weights as the graph takes them: k inputs, n outputs (rows), blocks of QUANT_BLOCK_SIZE. */
function checkQuantizedShape(name: string, q: QuantizedMatrix, k: number, n: number): void {
  if (q.k !== k || q.n !== n || q.blockSize !== QUANT_BLOCK_SIZE) {
    throw new LlamaGraphError(`${name}: quantized weight is [${q.k}, ${q.n}] block ${q.blockSize}, the graph needs [${k}, ${n}] block ${QUANT_BLOCK_SIZE}`);
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
