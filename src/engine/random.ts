import { getRandomValues } from 'node:crypto';

/** Uniform numbers in [0, 1). */
export type Random = () => number;

const TWO_POW_32 = 2 ** 32;

/**
 * xoshiro128** (Blackman & Vigna): small, fast, and good enough for sampling. A seed (any safe
 * integer) fixes the sequence; without one the state comes from crypto randomness.
 */
export function createRandom(seed?: number): Random {
  const state = seed === undefined ? randomState() : seededState(seed);
  let [s0, s1, s2, s3] = state;
  return () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result / TWO_POW_32;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function randomState(): Uint32Array {
  const state = new Uint32Array(4);
  do getRandomValues(state);
  while (state.every((word) => word === 0));
  return state;
}

// Both halves of the seed feed splitmix32 streams, so seeds differing only above bit 32 differ too.
function seededState(seed: number): Uint32Array {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const low = splitmix32(seed >>> 0);
  const high = splitmix32((Math.floor(seed / TWO_POW_32) >>> 0) ^ 0x5bd1e995);
  const state = Uint32Array.from({ length: 4 }, () => (low() ^ high()) >>> 0);
  // The all-zero state is xoshiro's one fixed point.
  if (state.every((word) => word === 0)) state[0] = 1;
  return state;
}

function splitmix32(start: number): () => number {
  let a = start | 0;
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
}
