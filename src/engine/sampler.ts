import { PenaltyState } from './penalty-state.js';
import { createRandom, type Random } from './random.js';
import { BUCKETS_PER_UNIT, EXP_OF_BUCKET, GAP_BUCKETS, MAX_GAP, NEAR_BUCKETS, WeighKernel } from './weigh-kernel.js';

export interface SamplingParams {
  /** 0 is greedy; defaults to 1 as in the OpenAI API. */
  temperature?: number;
  /** Nucleus sampling: keep the fewest most likely tokens holding this much probability. In (0, 1]. */
  topP?: number;
  /** Keep only the k most likely tokens; 0 or undefined keeps all. */
  topK?: number;
  /** Fixes the random sequence: the same seed and logits give the same tokens. */
  seed?: number;
  /** OpenAI: subtracted once from every token already generated. */
  presencePenalty?: number;
  /** OpenAI: subtracted per occurrence in the generated tokens. */
  frequencyPenalty?: number;
  /** Hugging Face: divides positive logits (multiplies negative ones) of prompt and generated tokens. */
  repetitionPenalty?: number;
}

/** A sampling parameter out of range; `param` names it for the API's error shape. */
export class SamplingParamError extends Error {
  readonly code = 'invalid_sampling_param';
  readonly param: keyof SamplingParams;

  constructor(param: keyof SamplingParams, message: string) {
    super(message);
    this.name = 'SamplingParamError';
    this.param = param;
  }
}

export interface SamplingContext {
  promptIds: readonly number[];
  generatedIds: readonly number[];
}

export interface Sampler {
  /**
   * Picks the next token from one step's logits. Penalties are applied in place and undone
   * before returning, so the caller's buffer is unchanged. Only ids below vocabSize are drawn.
   */
  sample(logits: Float32Array, context: SamplingContext): number;
}

/** Throws SamplingParamError for NaN, infinities and out-of-range values. */
export function validateSamplingParams(params: SamplingParams): void {
  const check = (param: keyof SamplingParams, ok: (v: number) => boolean, rule: string) => {
    const value = params[param];
    if (value !== undefined && (typeof value !== 'number' || !ok(value))) {
      throw new SamplingParamError(param, `${param} must be ${rule}, got ${value}`);
    }
  };
  check('temperature', (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0');
  check('topP', (v) => v > 0 && v <= 1, 'in (0, 1]');
  check('topK', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  check('seed', (v) => Number.isSafeInteger(v), 'a safe integer');
  check('presencePenalty', Number.isFinite, 'a finite number');
  check('frequencyPenalty', Number.isFinite, 'a finite number');
  check('repetitionPenalty', (v) => Number.isFinite(v) && v > 0, 'a finite number > 0');
}

export function createSampler(params: SamplingParams, vocabSize: number): Sampler {
  validateSamplingParams(params);
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
  return new LogitsSampler(params, vocabSize);
}

class LogitsSampler implements Sampler {
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;
  private readonly presence: number;
  private readonly frequency: number;
  private readonly repetition: number;
  private readonly random: Random;
  private readonly penalties: PenaltyState | undefined;

  constructor(params: SamplingParams, private readonly vocabSize: number) {
    this.temperature = params.temperature ?? 1;
    this.topK = params.topK ?? 0;
    this.topP = params.topP ?? 1;
    this.presence = params.presencePenalty ?? 0;
    this.frequency = params.frequencyPenalty ?? 0;
    this.repetition = params.repetitionPenalty ?? 1;
    this.random = createRandom(params.seed);
    const penalized = this.presence !== 0 || this.frequency !== 0 || this.repetition !== 1;
    this.penalties = penalized ? new PenaltyState(vocabSize) : undefined;
  }

  sample(logits: Float32Array, context: SamplingContext): number {
    const size = Math.min(logits.length, this.vocabSize);
    if (size === 0) throw new RangeError('sample() needs at least one logit');
    if (!this.penalties) return this.choose(logits, size);
    this.penalties.update(context);
    const saved = this.penalties.apply(logits, this.repetition, this.presence, this.frequency);
    try {
      return this.choose(logits, size);
    } finally {
      this.penalties.restore(logits, saved);
    }
  }

  private choose(logits: Float32Array, size: number): number {
    if (this.temperature === 0 || this.topK === 1) return argmax(logits, size);
    const topK = this.topK > 0 && this.topK < size;
    const kernel = topK ? undefined : WeighKernel.shared();
    const max = kernel ? kernel.load(logits, size) : logits[argmax(logits, size)]!;
    // Everything masked: nothing to weigh, fall back to the first id.
    if (max === -Infinity) return 0;
    // An infinite logit holds all the probability.
    if (max === Infinity) return argmax(logits, size);
    if (!kernel) {
      const candidates = topKIndices(logits, size, this.topK);
      const weights = candidates.map((i) => Math.exp((logits[i] - max) / this.temperature));
      return this.draw(candidates, weights, this.topP);
    }
    return this.nucleus(kernel, size, max);
  }

  /**
   * Temperature and top-p without a sort. One pass (WeighKernel, WebAssembly SIMD) weighs every
   * logit by its distance below the best, sums the total and gathers the tokens less than 16 x
   * temperature below the best. With top_p 1 the whole vocabulary is the nucleus, so the draw
   * walks the weights in id order and needs no ranking. Otherwise the nucleus is the fewest best
   * tokens holding top_p of the total: when the gathered tokens hold that much (they rank above
   * every other token), only they are ranked; when not (a long flat tail), every token with a
   * weight is gathered again. Ranking is by the kernel's 4,096 buckets of distance, whose masses
   * it sums as it weighs; buckets are ordered by weight, so the nucleus is every bucket above the
   * one where the mass is reached plus the fewest best of that one bucket, the exact nucleus.
   */
  private nucleus(kernel: WeighKernel, size: number, max: number): number {
    const inverse = 1 / this.temperature;
    const { total, nearCount, nearMass } = kernel.weigh(max, inverse, this.topP < 1);
    if (this.topP >= 1) return this.drawInOrder(kernel.weights, size, total);
    const needed = this.topP * total;
    // Near ids fill exactly buckets 0..1023; every id with a weight fills 0..4095.
    const nearEnough = nearMass >= needed;
    const count = nearEnough ? nearCount : gatherWeighted(kernel.weights, size, kernel.near);
    return this.drawFromNucleus(kernel, max, inverse, count, nearEnough ? NEAR_BUCKETS : GAP_BUCKETS, needed);
  }

  /** Top-p 1: a draw over the whole vocabulary, by cumulative weight in id order. */
  private drawInOrder(weights: Float64Array, size: number, total: number): number {
    let r = this.random() * total;
    let drawn = 0;
    for (let i = 0; i < size; i++) {
      const weight = weights[i]!;
      if (weight > 0) {
        drawn = i;
        r -= weight;
        if (r < 0) return i;
      }
    }
    return drawn; // rounding left a sliver of mass
  }

  /**
   * Draws from the nucleus holding `needed` among the `count` candidates in kernel.near, which
   * fill exactly the buckets below `buckets`.
   */
  private drawFromNucleus(kernel: WeighKernel, max: number, inverse: number, count: number, buckets: number, needed: number): number {
    const { weights, bucketMass, members } = kernel;
    let last = buckets - 1;
    while (last > 0 && bucketMass[last] === 0) last--;
    // The boundary bucket: the first whose mass, with every bucket above it, reaches p (at the
    // latest the last one holding any, should rounding leave the sum a hair short).
    let above = 0;
    let bucket = 0;
    while (bucket < last && above + bucketMass[bucket]! < needed) above += bucketMass[bucket++]!;
    const kept = selectByMass(weights, members, kernel.membersOf(bucket, count, max, inverse), needed - above);
    let boundaryMass = 0;
    for (let j = 0; j < kept; j++) boundaryMass += weights[members[j]!]!;
    // Draw: the boundary bucket's chosen members first, else a bucket above it by its mass, then
    // a member of that bucket by weight.
    let r = this.random() * (above + boundaryMass);
    for (let j = 0; j < kept; j++) {
      r -= weights[members[j]!]!;
      if (r < 0) return members[j]!;
    }
    let drawn = members[kept - 1]!;
    if (bucket === 0) return drawn; // rounding left a sliver of mass
    let target = 0;
    while (target < bucket - 1 && r >= bucketMass[target]!) r -= bucketMass[target++]!;
    const inTarget = kernel.membersOf(target, count, max, inverse);
    for (let j = 0; j < inTarget; j++) {
      r -= weights[members[j]!]!;
      drawn = members[j]!;
      if (r < 0) return drawn;
    }
    return drawn; // rounding left a sliver of mass
  }

  /** Draws among candidates sorted by weight, after cutting them to the top-p mass. */
  private draw(candidates: number[], weights: number[], topP: number): number {
    let total = 0;
    for (const w of weights) total += w;
    let kept = candidates.length;
    if (topP < 1) {
      let mass = 0;
      for (kept = 0; kept < candidates.length && mass < topP * total; kept++) mass += weights[kept];
      total = mass;
    }
    let r = this.random() * total;
    for (let j = 0; j < kept; j++) {
      r -= weights[j];
      if (r < 0) return candidates[j];
    }
    return candidates[kept - 1];
  }
}

/** Every id with a weight, to idx[0, count); returns count. */
function gatherWeighted(weights: Float64Array, size: number, idx: Int32Array): number {
  let count = 0;
  for (let i = 0; i < size; i++) if (weights[i]! > 0) idx[count++] = i;
  return count;
}

/** Index of the largest logit; the lowest index wins a tie. */
export function argmax(logits: ArrayLike<number>, size = logits.length): number {
  let best = 0;
  for (let i = 1; i < size; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

// "a ranks before b": higher value, then lower index, so every selection is deterministic.
const ranksBefore = (values: ArrayLike<number>, a: number, b: number) =>
  values[a] > values[b] || (values[a] === values[b] && a < b);

/**
 * The k best indices, best first, with a bounded min-heap: O(V log k), no full sort.
 */
export function topKIndices(values: ArrayLike<number>, size: number, k: number): number[] {
  const heap: number[] = [];
  // Root = the worst of the k kept so far.
  const worse = (a: number, b: number) => ranksBefore(values, b, a);
  const siftDown = (start: number) => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < heap.length && worse(heap[l], heap[worst])) worst = l;
      if (r < heap.length && worse(heap[r], heap[worst])) worst = r;
      if (worst === i) return;
      [heap[i], heap[worst]] = [heap[worst], heap[i]];
      i = worst;
    }
  };
  for (let i = 0; i < size; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0 && worse(heap[j], heap[(j - 1) >> 1]); j = (j - 1) >> 1) {
        [heap[j], heap[(j - 1) >> 1]] = [heap[(j - 1) >> 1], heap[j]];
      }
    } else if (ranksBefore(values, i, heap[0])) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (ranksBefore(values, a, b) ? -1 : 1));
}

/**
 * The fewest highest-weight indices whose weights sum to at least p of the total, in no
 * particular order (the draw does not need one). Quickselect by mass: partition around a
 * pivot, keep or discard the heavier side whole, and go on in the other, so the expected cost
 * is O(V) with no sort at all, even when a flat distribution keeps thousands of tokens.
 * Ranking is by weight, then lower index, so the set is deterministic under ties.
 */
export function topPIndices(weights: ArrayLike<number>, size: number, p: number): number[] {
  const scratch = new Int32Array(size);
  return Array.from(scratch.subarray(0, selectTopP(weights, size, p, scratch)));
}

/** topPIndices without allocations: leaves the kept indices in scratch[0, count) and returns count. */
function selectTopP(weights: ArrayLike<number>, size: number, p: number, scratch: Int32Array): number {
  const values = weights instanceof Float64Array ? weights : Float64Array.from(weights);
  let total = 0;
  for (let i = 0; i < size; i++) total += values[i]!;
  for (let i = 0; i < size; i++) scratch[i] = i;
  return selectByMass(values, scratch, size, p * total);
}

// weigh-kernel.wat gathers the tokens less than 16 x temperature below the best as it weighs
// (e^-16 = 1.1e-7 of the best's weight): for a trained model's logits they hold nearly all the
// mass, so a nucleus short of top_p 1 lies among them and only they are ranked.
// The kernel computes temperedWeight() operation for operation, with MAX_GAP, BUCKETS_PER_UNIT
// (weigh-kernel.ts) and these constants written in (1/64 is exact; 1/6 and 1/24 as the float64
// nearest them), and its tests hold every weight to this function's, bit for bit.
const BUCKET_WIDTH = 1 / BUCKETS_PER_UNIT;
const SIXTH = 1 / 6;
const TWENTY_FOURTH = 1 / 24;

/** e^-r for 0 <= r < 1/64: four terms of its series, within 1e-11 relative (the next term is r^5/120). */
function expOfSmall(r: number): number {
  return 1 - r * (1 - r * (0.5 - r * (SIXTH - r * TWENTY_FOURTH)));
}

/**
 * The weight of a logit `gap` = (best - logit) / temperature below the best: e^-gap from a table
 * of e^-(k/64) and the series for the remainder, several times cheaper than Math.exp, within
 * 1e-11 relative of it and never increasing with the gap (the series overestimates, so a bucket's
 * smallest weight stays above the next bucket's largest); 0 from MAX_GAP on.
 */
export function temperedWeight(gap: number): number {
  if (!(gap < MAX_GAP)) return 0;
  const bucket = (gap * BUCKETS_PER_UNIT) | 0;
  return EXP_OF_BUCKET[bucket]! * expOfSmall(gap - bucket * BUCKET_WIDTH);
}

/**
 * Among the `count` indices in idx, moves the fewest highest-ranked ones whose weights sum to at
 * least `needed` to idx[0, kept) and returns kept (at least 1).
 */
function selectByMass(weights: Float64Array, idx: Int32Array, count: number, needed: number): number {
  // idx[0, lo) is kept; the answer's boundary lies in idx[lo, hi); idx[hi, count) is dropped.
  let lo = 0;
  let hi = count;
  while (lo < hi && needed > 0) {
    const mid = lo + ((hi - lo) >> 1);
    const pivot = idx[mid];
    const pivotWeight = weights[pivot];
    idx[mid] = idx[hi - 1];
    idx[hi - 1] = pivot;
    // Move everything that ranks before the pivot to the front of the range, summing its mass.
    let store = lo;
    let mass = 0;
    for (let i = lo; i < hi - 1; i++) {
      const candidate = idx[i];
      const weight = weights[candidate];
      // ranksBefore, inlined: this loop is the sampler's hot path.
      if (weight > pivotWeight || (weight === pivotWeight && candidate < pivot)) {
        mass += weight;
        idx[i] = idx[store];
        idx[store++] = candidate;
      }
    }
    idx[hi - 1] = idx[store];
    idx[store] = pivot;
    if (mass >= needed) {
      hi = store;
    } else {
      needed -= mass + pivotWeight;
      lo = store + 1;
      // The pivot completed the mass: nothing after it is needed.
      if (needed <= 0) break;
    }
  }
  if (lo > 0) return lo;
  // At least the single best token, even for a vanishing p.
  let best = idx[0];
  for (let i = 1; i < count; i++) if (ranksBefore(weights, idx[i], best)) best = idx[i];
  idx[0] = best;
  return 1;
}
