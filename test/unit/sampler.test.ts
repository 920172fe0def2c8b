import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRandom } from '../../src/engine/random.js';
import {
  SamplingParamError,
  argmax,
  createSampler,
  temperedWeight,
  topKIndices,
  topPIndices,
  validateSamplingParams,
  type SamplingParams,
} from '../../src/engine/sampler.js';

const NO_CONTEXT = { promptIds: [], generatedIds: [] };

const logitsArbitrary = (minLength = 1) =>
  fc
    .array(fc.float({ min: -20, max: 20, noNaN: true, noDefaultInfinity: true }), { minLength, maxLength: 200 })
    .map((values) => Float32Array.from(values));

/** Top-p returns its set in no particular order. */
const byIndex = (indices: number[]) => [...indices].sort((a, b) => a - b);

/** Indices best first (value desc, index asc), by sorting everything. */
function sortedIndices(values: ArrayLike<number>): number[] {
  return Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
}

function softmax(logits: ArrayLike<number>, temperature: number): number[] {
  const max = Math.max(...Array.from(logits));
  const weights = Array.from(logits, (l) => Math.exp((l - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

function frequencies(params: SamplingParams, logits: Float32Array, draws: number): number[] {
  const sampler = createSampler(params, logits.length);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits, NO_CONTEXT)]++;
  return counts.map((c) => c / draws);
}

describe('createRandom', () => {
  it('repeats its sequence for a seed and differs across seeds', () => {
    const take = (seed: number) => {
      const random = createRandom(seed);
      return Array.from({ length: 20 }, () => random());
    };
    expect(take(42)).toEqual(take(42));
    expect(take(42)).not.toEqual(take(43));
    expect(take(5)).not.toEqual(take(5 + 2 ** 32));
    expect(take(-1)).not.toEqual(take(1));
    expect(Array.from({ length: 20 }, createRandom())).not.toEqual(Array.from({ length: 20 }, createRandom()));
  });

  it('is uniform on [0, 1)', () => {
    const random = createRandom(2024);
    const buckets = new Array(20).fill(0);
    const draws = 200_000;
    let min = 1;
    let max = 0;
    for (let i = 0; i < draws; i++) {
      const x = random();
      min = Math.min(min, x);
      max = Math.max(max, x);
      buckets[Math.floor(x * 20)]++;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    const expected = draws / 20;
    const chiSquare = buckets.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
    // 19 degrees of freedom: 43.8 is the 0.1% critical value; the seed is fixed, so this cannot flake.
    expect(chiSquare).toBeLessThan(43.8);
  });

  it('rejects seeds that are not safe integers', () => {
    expect(() => createRandom(1.5)).toThrow(RangeError);
    expect(() => createRandom(Number.NaN)).toThrow(RangeError);
  });
});

describe('validateSamplingParams', () => {
  it('names the offending parameter in a typed error', () => {
    const bad: [SamplingParams, keyof SamplingParams][] = [
      [{ temperature: Number.NaN }, 'temperature'],
      [{ temperature: -0.1 }, 'temperature'],
      [{ temperature: Number.POSITIVE_INFINITY }, 'temperature'],
      [{ topP: 0 }, 'topP'],
      [{ topP: 1.01 }, 'topP'],
      [{ topP: Number.NaN }, 'topP'],
      [{ topK: -1 }, 'topK'],
      [{ topK: 2.5 }, 'topK'],
      [{ seed: 0.5 }, 'seed'],
      [{ presencePenalty: Number.NaN }, 'presencePenalty'],
      [{ frequencyPenalty: Number.NEGATIVE_INFINITY }, 'frequencyPenalty'],
      [{ repetitionPenalty: 0 }, 'repetitionPenalty'],
      [{ repetitionPenalty: -1 }, 'repetitionPenalty'],
    ];
    for (const [params, param] of bad) {
      let error: unknown;
      try {
        createSampler(params, 10);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(params)).toBeInstanceOf(SamplingParamError);
      expect((error as SamplingParamError).param).toBe(param);
    }
  });

  it('accepts the edges of every range', () => {
    expect(() =>
      validateSamplingParams({ temperature: 0, topP: 1, topK: 0, seed: -7, presencePenalty: -2, frequencyPenalty: 2, repetitionPenalty: 0.5 }),
    ).not.toThrow();
    expect(() => validateSamplingParams({})).not.toThrow();
  });
});

describe('sampler', () => {
  it('is greedy argmax at temperature 0', () => {
    fc.assert(
      fc.property(logitsArbitrary(), (logits) => {
        expect(createSampler({ temperature: 0 }, logits.length).sample(logits, NO_CONTEXT)).toBe(sortedIndices(logits)[0]);
      }),
    );
  });

  it('is greedy with top-k 1 at any temperature', () => {
    fc.assert(
      fc.property(logitsArbitrary(), fc.integer({ min: 0, max: 1000 }), (logits, seed) => {
        const sampler = createSampler({ temperature: 1.5, topK: 1, seed }, logits.length);
        expect(sampler.sample(logits, NO_CONTEXT)).toBe(argmax(logits));
      }),
    );
  });

  it('selects the same top-k as a full sort', () => {
    fc.assert(
      fc.property(logitsArbitrary(), fc.integer({ min: 1, max: 250 }), (logits, k) => {
        expect(topKIndices(logits, logits.length, k)).toEqual(sortedIndices(logits).slice(0, k));
      }),
    );
  });

  it('keeps the minimal top-p set, as a full sort would', () => {
    fc.assert(
      // top_p within 1e-9 of 1 is left out: there the "minimal set" turns on the last bits of the
      // probabilities' sums, which a different summation order rounds differently (found by
      // [0, 3.47, 0], p = 1 - 9e-16, t = 0.1).
      fc.property(logitsArbitrary(), fc.double({ min: 0.01, max: 1 - 1e-9, noNaN: true }), fc.double({ min: 0.1, max: 3, noNaN: true }), (logits, p, t) => {
        const max = Math.max(...logits);
        const weights = Float64Array.from(logits, (l) => Math.exp((l - max) / t));
        let total = 0;
        for (const w of weights) total += w;
        const expected: number[] = [];
        let mass = 0;
        for (const i of sortedIndices(weights)) {
          if (expected.length > 0 && mass >= p * total) break;
          expected.push(i);
          mass += weights[i];
        }
        expect(byIndex(topPIndices(weights, weights.length, p))).toEqual(byIndex(expected));
      }),
    );
  });

  it('stops top-p as soon as the mass is reached, ties included', () => {
    expect(topPIndices(Float64Array.from([1, 1, 1, 1]), 4, 0.5)).toEqual([0, 1]);
    expect(topPIndices(Float64Array.from([1, 3, 0, 4]), 4, 0.5)).toEqual([3]);
    expect(byIndex(topPIndices(Float64Array.from([1, 3, 0, 4]), 4, 0.6))).toEqual([1, 3]);
    expect(byIndex(topPIndices(Float64Array.from([1, 3, 0, 4]), 4, 1))).toEqual([0, 1, 3]);
    expect(topPIndices(Float64Array.from([5]), 1, 0.01)).toEqual([0]);
  });

  it('only draws tokens inside the top-k and top-p sets', () => {
    const logits = Float32Array.from([0.1, 3, 2.9, -1, 2.8, 0, 1]);
    const draws = (params: SamplingParams) => new Set(frequencies({ ...params, seed: 11 }, logits, 5000).flatMap((f, i) => (f > 0 ? [i] : [])));
    expect(draws({ topK: 3 })).toEqual(new Set([1, 2, 4]));
    // softmax of the top three is ~[0.37, 0.33, 0.30] of their mass; 0.6 needs two of them.
    expect(draws({ topK: 3, topP: 0.6 })).toEqual(new Set([1, 2]));
    expect(draws({ topP: 0.05, temperature: 0.5 })).toEqual(new Set([1]));
  });

  it('matches the softmax distribution empirically (fixed seed)', () => {
    const logits = Float32Array.from([1, 2, 0.5, -1, 3, 0]);
    const draws = 200_000;
    for (const temperature of [0.7, 1, 1.8]) {
      const observed = frequencies({ temperature, seed: 7 }, logits, draws);
      const expected = softmax(logits, temperature);
      for (let i = 0; i < logits.length; i++) expect(Math.abs(observed[i] - expected[i])).toBeLessThan(0.005);
    }
    // Top-k renormalizes over the kept tokens.
    const topK = frequencies({ topK: 2, seed: 8 }, logits, draws);
    const kept = softmax([2, 3], 1);
    expect(Math.abs(topK[1] - kept[0])).toBeLessThan(0.005);
    expect(Math.abs(topK[4] - kept[1])).toBeLessThan(0.005);
    expect(topK[0] + topK[2] + topK[3] + topK[5]).toBe(0);
  });

  it('gives the same tokens for the same seed and logits, and other tokens for another seed', () => {
    const random = createRandom(99);
    const steps = Array.from({ length: 50 }, () => Float32Array.from({ length: 64 }, () => random() * 4));
    const run = (seed: number) => {
      const sampler = createSampler({ temperature: 1, topP: 0.9, topK: 40, seed }, 64);
      const generatedIds: number[] = [];
      for (const logits of steps) generatedIds.push(sampler.sample(logits, { promptIds: [1, 2], generatedIds }));
      return generatedIds;
    };
    expect(run(1234)).toEqual(run(1234));
    expect(run(1234)).not.toEqual(run(4321));
  });

  it('never draws ids past the vocabulary (padded logits)', () => {
    const logits = Float32Array.from([0, 1, 0, 0, 50, 60, 70]);
    expect(createSampler({ temperature: 0 }, 4).sample(logits, NO_CONTEXT)).toBe(1);
    for (const params of [{ temperature: 5 }, { topK: 3 }, { topP: 0.99 }]) {
      const sampler = createSampler({ ...params, seed: 3 }, 4);
      for (let i = 0; i < 500; i++) expect(sampler.sample(logits, NO_CONTEXT)).toBeLessThan(4);
    }
  });
});

describe('penalties', () => {
  const greedy = (params: SamplingParams, logits: number[], context: { promptIds: number[]; generatedIds: number[] }) =>
    createSampler({ ...params, temperature: 0 }, logits.length).sample(Float32Array.from(logits), context);

  it('presence penalty lowers every generated token once', () => {
    const logits = [0, 0.5, 0.4];
    expect(greedy({ presencePenalty: 0.2 }, logits, { promptIds: [], generatedIds: [] })).toBe(1);
    expect(greedy({ presencePenalty: 0.2 }, logits, { promptIds: [1], generatedIds: [] })).toBe(1);
    expect(greedy({ presencePenalty: 0.2 }, logits, { promptIds: [], generatedIds: [1] })).toBe(2);
    expect(greedy({ presencePenalty: 0.05 }, logits, { promptIds: [], generatedIds: [1, 1, 1] })).toBe(1);
    expect(greedy({ presencePenalty: -0.6 }, [0, 0.5, 0.4], { promptIds: [], generatedIds: [0] })).toBe(0);
  });

  it('frequency penalty grows with each occurrence', () => {
    const logits = [0, 0.5, 0.4];
    expect(greedy({ frequencyPenalty: 0.06 }, logits, { promptIds: [], generatedIds: [1] })).toBe(1);
    expect(greedy({ frequencyPenalty: 0.06 }, logits, { promptIds: [], generatedIds: [1, 1] })).toBe(2);
    expect(greedy({ frequencyPenalty: 0.06 }, logits, { promptIds: [1, 1, 1], generatedIds: [] })).toBe(1);
  });

  it('repetition penalty covers prompt and generated ids, by the sign of the logit', () => {
    expect(greedy({ repetitionPenalty: 1.5 }, [2, 1.5, -1], { promptIds: [0], generatedIds: [] })).toBe(1);
    expect(greedy({ repetitionPenalty: 1.5 }, [2, 1.5, -1], { promptIds: [], generatedIds: [0] })).toBe(1);
    expect(greedy({ repetitionPenalty: 1.2 }, [2, 1.5, -1], { promptIds: [0], generatedIds: [] })).toBe(0);
    expect(greedy({ repetitionPenalty: 1.5 }, [-1, -1.2], { promptIds: [0, 0], generatedIds: [] })).toBe(1);
    // Below 1 it rewards repetition instead.
    expect(greedy({ repetitionPenalty: 0.5 }, [1, 1.5], { promptIds: [0], generatedIds: [] })).toBe(0);
  });

  it("leaves the caller's logits as they were", () => {
    const logits = Float32Array.from([1, -2, 3, 0.5]);
    const copy = Float32Array.from(logits);
    const sampler = createSampler({ repetitionPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: 0.3, seed: 1 }, 4);
    for (let step = 0; step < 5; step++) sampler.sample(logits, { promptIds: [0, 1], generatedIds: [2, 3, 2].slice(0, step) });
    expect(logits).toEqual(copy);
  });

  it('counts incrementally exactly as a fresh count of the whole context would', () => {
    const params: SamplingParams = { temperature: 0, presencePenalty: 0.3, frequencyPenalty: 0.2, repetitionPenalty: 1.3 };
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 10 }),
        fc.array(logitsArbitrary(8).map((l) => l.slice(0, 8)), { minLength: 1, maxLength: 30 }),
        (promptIds, steps) => {
          const incremental = createSampler(params, 8);
          const generatedIds: number[] = [];
          for (const logits of steps) {
            const fresh = createSampler(params, 8).sample(logits, { promptIds: [...promptIds], generatedIds: [...generatedIds] });
            const next = incremental.sample(logits, { promptIds, generatedIds });
            expect(next).toBe(fresh);
            generatedIds.push(next);
          }
          // A new request through the same sampler, even a longer one, starts its counts over.
          const other = { promptIds: [...promptIds, 7, 7], generatedIds: generatedIds.map((id) => (id + 1) % 8) };
          expect(incremental.sample(steps[0], other)).toBe(createSampler(params, 8).sample(steps[0], other));
        },
      ),
    );
  });
});

describe('top-p without a full-vocabulary pass', () => {
  // The sampler weighs logits by table (temperedWeight) and finds the nucleus by buckets; the draw
  // must still come from exactly the nucleus the plain definition gives: a full ranking of the
  // weights (temperedWeight within 64 of the best, Math.exp beyond), no buckets.
  const nucleusOf = (logits: Float32Array, temperature: number, p: number) => {
    const max = Math.max(...logits);
    const weights = Float64Array.from(logits, (l) => {
      const gap = (max - l) * (1 / temperature);
      return gap < 64 ? temperedWeight(gap) : Math.exp((l - max) * (1 / temperature));
    });
    return new Set(topPIndices(weights, weights.length, p));
  };

  it('weighs a logit within 1e-10 of Math.exp, never more for a logit further below the best', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 63.99, noNaN: true }), fc.double({ min: 0, max: 63.99, noNaN: true }), (a, b) => {
        expect(Math.abs(temperedWeight(a) / Math.exp(-a) - 1)).toBeLessThan(1e-10);
        if (a < b) expect(temperedWeight(a)).toBeGreaterThanOrEqual(temperedWeight(b));
      }),
      { numRuns: 5000 },
    );
    // Across every bucket edge: the last weight of a bucket is not below the next bucket's first.
    for (let k = 1; k < 64 * 64; k++) expect(temperedWeight((k - 1e-9) / 64)).toBeGreaterThanOrEqual(temperedWeight(k / 64));
    // From 64 below the best on, a weight float64 sums cannot see (e^-64 = 1.6e-28) is 0.
    expect(temperedWeight(64)).toBe(0);
    expect(temperedWeight(Infinity)).toBe(0);
  });

  it('draws only from the exact nucleus, for peaked, flat and long-tailed logits', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -60, max: 30, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 400 }),
        fc.double({ min: 0.05, max: 2, noNaN: true }),
        fc.double({ min: 0.05, max: 0.99, noNaN: true }),
        fc.integer(),
        (values, temperature, topP, seed) => {
          const logits = Float32Array.from(values);
          const nucleus = nucleusOf(logits, temperature, topP);
          const sampler = createSampler({ temperature, topP, seed }, logits.length);
          for (let i = 0; i < 20; i++) expect(nucleus.has(sampler.sample(logits, NO_CONTEXT))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a tail of many tiny weights that together move the nucleus boundary is counted exactly', () => {
    // One strong token, then 100,000 tokens each 16.5 below it: each weight is tiny (e^-16.5), yet
    // together they hold ~0.7 % of the mass, so top_p 0.9999 reaches into them and about 0.7 % of
    // draws must land there.
    const logits = new Float32Array(100_001).fill(-16.5);
    logits[0] = 0;
    const all = createSampler({ temperature: 1, topP: 0.9999, seed: 3 }, logits.length);
    const exact = nucleusOf(logits, 1, 0.9999);
    expect(exact.size).toBeGreaterThan(1000);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const id = all.sample(logits, NO_CONTEXT);
      expect(exact.has(id)).toBe(true);
      seen.add(id);
    }
    expect(seen.size).toBeGreaterThan(1);
  });
});
