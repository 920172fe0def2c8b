/*
 * Weights of a Llama-family decoder and their deterministic, seeded generation.
 *
 * Contract (shared with the float64 reference forward pass):
 * - Every matrix is a Float32Array stored row-major as [in, out], so a projection is y = x @ W,
 *   exactly ONNX MatMul's B. embedTokens is [vocab, hidden] (row t is token t's embedding);
 *   lmHead is [hidden, vocab]. Norm weights are [hidden].
 * - Forward pass per layer: h = x + o(attn(rms(x) * inputNorm)); x' = h + down(silu(rms(h) * postAttentionNorm
 *   @ gate) * (rms(h) * postAttentionNorm @ up)); rms(x) = x / sqrt(mean(x^2) + rmsNormEps).
 *   Logits = (rms(x_last) * finalNorm) @ lmHead. Query heads h use KV head floor(h / (numHeads / numKvHeads)).
 * - Rotary (HF Llama, non-interleaved "rotate_half"): for position p and i in [0, headDim/2),
 *   angle = p * ropeTheta^(-2i/headDim); x1 = x[:headDim/2], x2 = x[headDim/2:];
 *   out = [x1*cos - x2*sin, x2*cos + x1*sin]. Applied to q and k before the KV cache. Scores scale 1/sqrt(headDim).
 * - Generation: each tensor has its own mulberry32 stream seeded from FNV-1a(`${seed}:${tensorName}`), drawn
 *   as normals by Box-Muller, so any one tensor (or layer) can be generated alone, in any order.
 */

export interface LlamaShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  contextLength: number;
  ropeTheta: number;
  rmsNormEps: number;
  /** lm_head is the embedding table transposed (Qwen2.5-0.5B, Llama 3.2 1B): one tensor, not two. */
  tieWordEmbeddings?: boolean;
}

export interface LlamaLayerWeights {
  inputNorm: Float32Array; // [hidden]
  qProj: Float32Array; // [hidden, heads*headDim]
  kProj: Float32Array; // [hidden, kvHeads*headDim]
  vProj: Float32Array; // [hidden, kvHeads*headDim]
  oProj: Float32Array; // [heads*headDim, hidden]
  postAttentionNorm: Float32Array; // [hidden]
  gateProj: Float32Array; // [hidden, inter]
  upProj: Float32Array; // [hidden, inter]
  downProj: Float32Array; // [inter, hidden]
}

export interface LlamaWeights {
  shape: LlamaShape;
  embedTokens: Float32Array; // [vocab, hidden]
  layers: LlamaLayerWeights[];
  finalNorm: Float32Array; // [hidden]
  lmHead: Float32Array; // [hidden, vocab]
}

/** Weights handed out one piece at a time, so a large model never sits in memory whole. */
export interface LlamaWeightSource {
  shape: LlamaShape;
  embedTokens(): Float32Array;
  layer(index: number): LlamaLayerWeights;
  finalNorm(): Float32Array;
  lmHead(): Float32Array;
}

// Standard deviations: projections as HF's initializer_range; embeddings larger so the token identity
// survives the residual stream; lm_head scaled so logits spread over a few units (peaked, non-degenerate).
const PROJECTION_STD = 0.02;
const EMBEDDING_STD = 0.05;
const NORM_NOISE_STD = 0.02;
const LM_HEAD_LOGIT_STD = 3;

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` float32 values drawn from normal(mean, std), deterministic for (seed, name). */
export function seededNormal(seed: number, name: string, count: number, mean: number, std: number): Float32Array {
  const next = mulberry32(fnv1a(`${seed}:${name}`));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = 1 - next(); // (0, 1], keeps log finite
    const u2 = next();
    const radius = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * radius * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = mean + std * radius * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export function makeSeededLayer(shape: LlamaShape, seed: number, index: number): LlamaLayerWeights {
  const { hiddenSize: e, numHeads, numKvHeads, headDim, intermediateSize: inter } = shape;
  const p = `layers.${index}.`;
  const proj = (name: string, count: number) => seededNormal(seed, p + name, count, 0, PROJECTION_STD);
  return {
    inputNorm: seededNormal(seed, `${p}input_norm`, e, 1, NORM_NOISE_STD),
    qProj: proj('q_proj', e * numHeads * headDim),
    kProj: proj('k_proj', e * numKvHeads * headDim),
    vProj: proj('v_proj', e * numKvHeads * headDim),
    oProj: proj('o_proj', numHeads * headDim * e),
    postAttentionNorm: seededNormal(seed, `${p}post_attention_norm`, e, 1, NORM_NOISE_STD),
    gateProj: proj('gate_proj', e * inter),
    upProj: proj('up_proj', e * inter),
    downProj: proj('down_proj', inter * e),
  };
}

export function seededWeightSource(shape: LlamaShape, seed: number): LlamaWeightSource {
  // A tied table is also lm_head: scaled like an untied lm_head, so logits spread alike.
  const embeddingStd = shape.tieWordEmbeddings ? LM_HEAD_LOGIT_STD / Math.sqrt(shape.hiddenSize) : EMBEDDING_STD;
  const embedTokens = () => seededNormal(seed, 'embed_tokens', shape.vocabSize * shape.hiddenSize, 0, embeddingStd);
  return {
    shape,
    embedTokens,
    layer: (index) => makeSeededLayer(shape, seed, index),
    finalNorm: () => seededNormal(seed, 'final_norm', shape.hiddenSize, 1, NORM_NOISE_STD),
    lmHead: () =>
      shape.tieWordEmbeddings
        ? transpose(embedTokens(), shape.vocabSize, shape.hiddenSize)
        : seededNormal(seed, 'lm_head', shape.hiddenSize * shape.vocabSize, 0, LM_HEAD_LOGIT_STD / Math.sqrt(shape.hiddenSize)),
  };
}

/** Row-major [rows, cols] to [cols, rows]. */
export function transpose(matrix: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(matrix.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = matrix[r * cols + c]!;
  }
  return out;
}

/** All weights of a seeded model in memory (fine for small presets; large ones stream via seededWeightSource). */
export function makeSeededWeights(shape: LlamaShape, seed: number): LlamaWeights {
  const source = seededWeightSource(shape, seed);
  return {
    shape,
    embedTokens: source.embedTokens(),
    layers: Array.from({ length: shape.numLayers }, (_, i) => source.layer(i)),
    finalNorm: source.finalNorm(),
    lmHead: source.lmHead(),
  };
}

export function weightSourceOf(weights: LlamaWeights): LlamaWeightSource {
  return {
    shape: weights.shape,
    embedTokens: () => weights.embedTokens,
    layer: (index) => weights.layers[index],
    finalNorm: () => weights.finalNorm,
    lmHead: () => weights.lmHead,
  };
}
