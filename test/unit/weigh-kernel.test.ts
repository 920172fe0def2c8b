import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { temperedWeight } from '../../src/engine/sampler.js';
import { WeighKernel } from '../../src/engine/weigh-kernel.js';
import { assembleWeighKernel, kernelModuleSource } from '../../tools/wasm/build.js';

// The reference: what the kernel computes, written out in JavaScript one logit at a time.
function reference(logits: Float32Array, inverse: number) {
  let best = -Infinity;
  for (const l of logits) if (l > best) best = l;
  const weights = Array.from(logits, (l) => temperedWeight((best - l) * inverse));
  const near = [...logits.keys()].filter((i) => (best - logits[i]!) * inverse < 16);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  // Each weighed id's bucket, floor(64 x gap), as temperedWeight() takes it; masses summed in id order.
  const bucketOf = (i: number) => ((best - logits[i]!) * inverse * 64) | 0;
  const weighed = [...logits.keys()].filter((i) => weights[i]! > 0);
  const bucketMass = new Float64Array(4097);
  for (const i of weighed) bucketMass[bucketOf(i)]! += weights[i]!;
  return { best, weights, near, weighed, bucketOf, bucketMass, total: sum(weights), nearMass: sum(near.map((i) => weights[i]!)) };
}

const logitValue = fc.oneof(
  { weight: 8, arbitrary: fc.float({ min: -80, max: 40, noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(-Infinity, Number.NaN, 0, -0) },
);

describe('weigh kernel (WebAssembly)', () => {
  it('is the module weigh-kernel.wat assembles to (npm run build:wasm)', async () => {
    const committed = await readFile(new URL('../../src/engine/weigh-kernel-wasm.ts', import.meta.url), 'utf8');
    expect(committed).toBe(kernelModuleSource(await assembleWeighKernel()));
  });

  it('gives the best logit, every weight and every bucket mass bit for bit as temperedWeight, with the near ids in order', () => {
    const kernel = WeighKernel.shared();
    fc.assert(
      fc.property(
        fc.array(logitValue, { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0.05, max: 3, noNaN: true }),
        (values, temperature) => {
          const logits = Float32Array.from(values);
          // NaNs with payloads and either sign, as arithmetic may leave them: none may index the table.
          const bits = new Uint32Array(logits.buffer);
          values.forEach((v, i) => {
            if (Number.isNaN(v)) bits[i] = (i & 1 ? 0xffc00000 : 0x7fc00000) | (Math.imul(i + 1, 0x9e3779b1) & 0x3fffff);
          });
          const expected = reference(logits, 1 / temperature);
          const best = kernel.load(logits, logits.length);
          // == and not Object.is: the best of 0 and -0 may come back as either.
          expect(best === expected.best).toBe(true);
          if (!Number.isFinite(best)) return;
          const { total, nearCount, nearMass } = kernel.weigh(best, 1 / temperature, true);
          for (let i = 0; i < logits.length; i++) expect(Object.is(kernel.weights[i], expected.weights[i])).toBe(true);
          expect(Array.from(kernel.near.subarray(0, nearCount))).toEqual(expected.near);
          // The same additions in the same order: equal bit for bit, the zeros of bucket 4096 included.
          expect(Array.from(kernel.bucketMass)).toEqual(Array.from(expected.bucketMass));
          // Two lanes add in another order than one loop: equal to float64 rounding.
          expect(Math.abs(total - expected.total)).toBeLessThanOrEqual(1e-12 * expected.total);
          expect(Math.abs(nearMass - expected.nearMass)).toBeLessThanOrEqual(1e-12 * expected.total);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('weighs only the logits it was given, across growing and shrinking sizes', () => {
    const kernel = WeighKernel.shared();
    for (const size of [3, 200_001, 5, 1]) {
      // A longer buffer whose extra values would win if the kernel read past `size`.
      const logits = new Float32Array(size + 7).fill(100);
      for (let i = 0; i < size; i++) logits[i] = Math.sin(i) * 10;
      const expected = reference(logits.subarray(0, size), 1);
      expect(kernel.load(logits, size)).toBe(expected.best);
      const { total, nearCount } = kernel.weigh(expected.best, 1, true);
      expect(nearCount).toBe(expected.near.length);
      expect(Math.abs(total - expected.total)).toBeLessThanOrEqual(1e-12 * expected.total);
      expect(Array.from(kernel.weights.subarray(0, size))).toEqual(expected.weights);
      expect(Array.from(kernel.bucketMass)).toEqual(Array.from(expected.bucketMass));
    }
  });

  it('finds the members of a bucket among the near or the weighed ids, last id first', () => {
    const kernel = WeighKernel.shared();
    fc.assert(
      fc.property(
        fc.array(logitValue, { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0.05, max: 3, noNaN: true }),
        fc.boolean(),
        (values, temperature, amongWeighed) => {
          const logits = Float32Array.from(values);
          const expected = reference(logits, 1 / temperature);
          const best = kernel.load(logits, logits.length);
          if (!Number.isFinite(best)) return;
          const { nearCount } = kernel.weigh(best, 1 / temperature, true);
          // The sampler's two candidate lists: the near ids as weigh() leaves them, or every weighed id.
          const candidates = amongWeighed ? expected.weighed : expected.near;
          if (amongWeighed) kernel.near.set(candidates);
          const count = amongWeighed ? candidates.length : nearCount;
          for (const bucket of new Set(candidates.map(expected.bucketOf))) {
            const found = kernel.membersOf(bucket, count, best, 1 / temperature);
            const members = candidates.filter((i) => expected.bucketOf(i) === bucket).reverse();
            expect(Array.from(kernel.members.subarray(0, found))).toEqual(members);
          }
          // A bucket nobody is in.
          expect(kernel.membersOf(4095, count, best, 1 / temperature)).toBe(candidates.filter((i) => expected.bucketOf(i) === 4095).length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('finds nothing to weigh in logits that are all -Infinity or NaN', () => {
    const kernel = WeighKernel.shared();
    expect(kernel.load(Float32Array.from([-Infinity, Number.NaN, -Infinity]), 3)).toBe(-Infinity);
    expect(kernel.load(Float32Array.from([Number.NaN, 2, Number.NaN, 7, 1]), 5)).toBe(7);
  });
});
