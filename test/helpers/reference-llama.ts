// A float64 Llama forward pass written straight from the HF LlamaForCausalLM definition.
// It is the yardstick for the builder's ONNX graphs, so it shares nothing with them but the weights.
import type { LlamaWeights } from '../../tools/model-builder/weights.js';

/** Per-layer key/value rows already computed, one Float64Array of kvHeads*headDim per position. */
interface LayerCache {
  keys: Float64Array[];
  values: Float64Array[];
}

/** y = x @ W for a row-major [inDim, outDim] matrix, accumulated in float64. */
function matVec(x: Float64Array, w: Float32Array, inDim: number, outDim: number): Float64Array {
  const y = new Float64Array(outDim);
  for (let i = 0; i < inDim; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    const row = i * outDim;
    for (let j = 0; j < outDim; j++) y[j] += xi * w[row + j];
  }
  return y;
}

/** RMSNorm: x * w / sqrt(mean(x^2) + eps). */
function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let sumSquares = 0;
  for (let i = 0; i < x.length; i++) sumSquares += x[i] * x[i];
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * scale * w[i];
  return y;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export class ReferenceLlama {
  private readonly weights: LlamaWeights;
  private readonly cache: LayerCache[];
  private readonly invFreq: Float64Array;
  private position = 0;

  constructor(weights: LlamaWeights) {
    this.weights = weights;
    const { numLayers, headDim, ropeTheta, numHeads, numKvHeads } = weights.shape;
    if (numHeads % numKvHeads !== 0) {
      throw new RangeError(`numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
    }
    this.cache = Array.from({ length: numLayers }, () => ({ keys: [], values: [] }));
    this.invFreq = new Float64Array(headDim / 2);
    for (let i = 0; i < headDim / 2; i++) this.invFreq[i] = Math.pow(ropeTheta, (-2 * i) / headDim);
  }

  /** Number of positions already in the KV cache. */
  get length(): number {
    return this.position;
  }

  /** Appends tokenIds after the cached positions; returns the logits at each new position. */
  forward(tokenIds: number[]): Float64Array[] {
    const { vocabSize, contextLength } = this.weights.shape;
    if (this.position + tokenIds.length > contextLength) {
      throw new RangeError(`sequence of ${this.position + tokenIds.length} exceeds context ${contextLength}`);
    }
    const logits: Float64Array[] = [];
    for (const tokenId of tokenIds) {
      if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= vocabSize) {
        throw new RangeError(`token id ${tokenId} outside vocabulary of ${vocabSize}`);
      }
      logits.push(this.step(tokenId));
    }
    return logits;
  }

  /** One position through every layer. Causal attention makes token-at-a-time equal to a batched prefill. */
  private step(tokenId: number): Float64Array {
    const w = this.weights;
    const s = w.shape;
    const pos = this.position;
    let x: Float64Array = Float64Array.from(w.embedTokens.subarray(tokenId * s.hiddenSize, (tokenId + 1) * s.hiddenSize));
    const qWidth = s.numHeads * s.headDim;
    const kvWidth = s.numKvHeads * s.headDim;

    for (let l = 0; l < s.numLayers; l++) {
      const layer = w.layers[l];
      const h = rmsNorm(x, layer.inputNorm, s.rmsNormEps);
      const q = matVec(h, layer.qProj, s.hiddenSize, qWidth);
      const k = matVec(h, layer.kProj, s.hiddenSize, kvWidth);
      const v = matVec(h, layer.vProj, s.hiddenSize, kvWidth);
      for (let head = 0; head < s.numHeads; head++) this.rotate(q, head * s.headDim, pos);
      for (let head = 0; head < s.numKvHeads; head++) this.rotate(k, head * s.headDim, pos);
      this.cache[l].keys.push(k);
      this.cache[l].values.push(v);

      const attended = this.attend(q, this.cache[l]);
      const o = matVec(attended, layer.oProj, qWidth, s.hiddenSize);
      for (let i = 0; i < s.hiddenSize; i++) x[i] += o[i];

      const h2 = rmsNorm(x, layer.postAttentionNorm, s.rmsNormEps);
      const gate = matVec(h2, layer.gateProj, s.hiddenSize, s.intermediateSize);
      const up = matVec(h2, layer.upProj, s.hiddenSize, s.intermediateSize);
      for (let i = 0; i < s.intermediateSize; i++) gate[i] = silu(gate[i]) * up[i];
      const down = matVec(gate, layer.downProj, s.intermediateSize, s.hiddenSize);
      for (let i = 0; i < s.hiddenSize; i++) x[i] += down[i];
    }

    x = rmsNorm(x, w.finalNorm, s.rmsNormEps);
    this.position++;
    return matVec(x, w.lmHead, s.hiddenSize, s.vocabSize);
  }

  /** Non-interleaved rotary (HF rotate_half): pairs element i with element i + headDim/2. */
  private rotate(vec: Float64Array, offset: number, pos: number): void {
    const half = this.weights.shape.headDim / 2;
    for (let i = 0; i < half; i++) {
      const angle = pos * this.invFreq[i];
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = vec[offset + i];
      const b = vec[offset + i + half];
      vec[offset + i] = a * cos - b * sin;
      vec[offset + i + half] = b * cos + a * sin;
    }
  }

  /** Scaled dot-product attention over every cached position (all are <= the current one). */
  private attend(q: Float64Array, cache: LayerCache): Float64Array {
    const s = this.weights.shape;
    const d = s.headDim;
    const groupSize = s.numHeads / s.numKvHeads;
    const scale = 1 / Math.sqrt(d);
    const seen = cache.keys.length;
    const out = new Float64Array(s.numHeads * d);
    const scores = new Float64Array(seen);

    for (let head = 0; head < s.numHeads; head++) {
      const kvOffset = Math.floor(head / groupSize) * d;
      const qOffset = head * d;
      let maxScore = -Infinity;
      for (let t = 0; t < seen; t++) {
        const key = cache.keys[t];
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[qOffset + i] * key[kvOffset + i];
        scores[t] = dot * scale;
        if (scores[t] > maxScore) maxScore = scores[t];
      }
      let total = 0;
      for (let t = 0; t < seen; t++) {
        scores[t] = Math.exp(scores[t] - maxScore);
        total += scores[t];
      }
      for (let t = 0; t < seen; t++) {
        const p = scores[t] / total;
        const value = cache.values[t];
        for (let i = 0; i < d; i++) out[qOffset + i] += p * value[kvOffset + i];
      }
    }
    return out;
  }
}

/** The reference's greedy continuation of `prompt`: `count` tokens, each the argmax (lowest id on ties). */
export function referenceGreedy(weights: LlamaWeights, prompt: number[], count: number): number[] {
  const model = new ReferenceLlama(weights);
  let logits = model.forward(prompt).at(-1)!;
  const tokens: number[] = [];
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
    tokens.push(best);
    logits = model.forward([best])[0]!;
  }
  return tokens;
}
