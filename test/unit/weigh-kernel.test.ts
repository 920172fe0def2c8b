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
  return { best, weights, near, total: sum(weights), nearMass: sum(near.map((i) => weights[i]!)) };
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

  it('gives the best logit and every weight bit for bit as temperedWeight, with the near ids in order', () => {
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
          const { total, nearCount, nearMass } = kernel.weigh(best, 1 / temperature);
          for (let i = 0; i < logits.length; i++) expect(Object.is(kernel.weights[i], expected.weights[i])).toBe(true);
          expect(Array.from(kernel.near.subarray(0, nearCount))).toEqual(expected.near);
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
      const { total, nearCount } = kernel.weigh(expected.best, 1);
      expect(nearCount).toBe(expected.near.length);
      expect(Math.abs(total - expected.total)).toBeLessThanOrEqual(1e-12 * expected.total);
      expect(Array.from(kernel.weights.subarray(0, size))).toEqual(expected.weights);
    }
  });

  it('finds nothing to weigh in logits that are all -Infinity or NaN', () => {
    const kernel = WeighKernel.shared();
    expect(kernel.load(Float32Array.from([-Infinity, Number.NaN, -Infinity]), 3)).toBe(-Infinity);
    expect(kernel.load(Float32Array.from([Number.NaN, 2, Number.NaN, 7, 1]), 5)).toBe(7);
  });
});
