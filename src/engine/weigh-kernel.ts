import { WEIGH_KERNEL_WASM } from './weigh-kernel-wasm.js';

/**
 * The sampler's pass over the vocabulary in WebAssembly SIMD (weigh-kernel.wat): the best logit,
 * then every token's weight, the total, the ids near the best and each bucket's mass. JavaScript
 * cannot use SIMD, and this pass is most of a draw's cost at a 152k vocabulary: the same pass in
 * JavaScript measured about 1.8 ms a draw there, the kernel about 0.8 ms, with the same weights
 * bit for bit. membersOf() then finds one bucket's ids without a pass in JavaScript.
 *
 * One kernel serves every sampler of the process: a draw uses it from start to end without
 * yielding, so draws never interleave. The arrays it returns are views into its memory, valid
 * until the next load().
 */
export class WeighKernel {
  private static instance: WeighKernel | undefined;

  static shared(): WeighKernel {
    return (WeighKernel.instance ??= new WeighKernel());
  }

  private readonly exports: KernelExports;
  private capacity = 0;
  private size = 0;
  private logitsAt = 0;
  private weightsAt = 0;
  private nearAt = 0;
  private membersAt = 0;
  private logitsView = new Float32Array(0);
  /** weights[i]: token i's weight from the last weigh(); 0 beyond 64 x temperature below the best. */
  weights = new Float64Array(0);
  /** near[0, count): the ids weigh() found less than 16 x temperature below the best, in id order; free to overwrite. */
  near = new Int32Array(0);
  /**
   * bucketMass[k]: the sum, in id order, of the last weigh(..., true)'s weights in bucket k =
   * floor(64 x gap), the bucket temperedWeight() takes a weight from. Buckets 0..1023 hold exactly
   * the near ids, 0..4095 every id with a weight; 4096 holds only zeros.
   */
  bucketMass = new Float64Array(0);
  /** members[0, count): the ids the last membersOf() found. */
  members = new Int32Array(0);

  private constructor() {
    const module = new wasm.Module(Buffer.from(WEIGH_KERNEL_WASM, 'base64'));
    this.exports = new wasm.Instance(module).exports as KernelExports;
    new Float64Array(this.exports.memory.buffer, 0, EXP_OF_BUCKET.length).set(EXP_OF_BUCKET);
  }

  /** Copies logits[0, size) in and returns the largest, NaN passed over (-Infinity if none). */
  load(logits: Float32Array, size: number): number {
    this.reserve(size);
    this.size = size;
    this.logitsView.set(logits.subarray(0, size));
    // weigh() takes logits in pairs: an odd count gets a -Infinity after it, which weighs 0.
    this.logitsView[size] = -Infinity;
    return this.exports.maxOf(this.logitsAt, size);
  }

  /**
   * Weighs the loaded logits against `best` (from load()); returns the total and the near ids'
   * count and mass. bucketMass is filled only when asked for (the nucleus needs it, a draw over
   * the whole vocabulary does not).
   */
  weigh(best: number, inverseTemperature: number, withBucketMass: boolean): { total: number; nearCount: number; nearMass: number } {
    const pairs = this.size + (this.size & 1);
    if (withBucketMass) this.bucketMass.fill(0);
    const total = this.exports.weigh(this.logitsAt, this.weightsAt, this.nearAt, withBucketMass ? MASS_AT : 0, pairs, best, inverseTemperature);
    return { total, nearCount: this.exports.nearCount.value, nearMass: this.exports.nearMass.value };
  }

  /**
   * The ids among near[0, count) in `bucket` (as weigh() with the same best and temperature put
   * them), to members[0, returned count), last id first. near[] must hold ids weigh() gave a
   * weight, in id order.
   */
  membersOf(bucket: number, count: number, best: number, inverseTemperature: number): number {
    return this.exports.membersOf(this.logitsAt, this.nearAt, count, this.membersAt, best, inverseTemperature, bucket);
  }

  private reserve(size: number): void {
    if (size <= this.capacity) return;
    // Room for the pad; 16-byte alignment for the SIMD loads and stores.
    const slots = size + 2;
    this.logitsAt = align16(MASS_AT + 8 * EXP_OF_BUCKET.length);
    this.weightsAt = align16(this.logitsAt + 4 * slots);
    this.nearAt = align16(this.weightsAt + 8 * slots);
    this.membersAt = align16(this.nearAt + 4 * slots);
    const bytes = this.membersAt + 4 * slots;
    const { memory } = this.exports;
    const pages = Math.ceil(bytes / 65536) - memory.buffer.byteLength / 65536;
    if (pages > 0) memory.grow(pages);
    // Growing detaches the old views; these are made after it.
    this.logitsView = new Float32Array(memory.buffer, this.logitsAt, slots);
    this.weights = new Float64Array(memory.buffer, this.weightsAt, slots);
    this.near = new Int32Array(memory.buffer, this.nearAt, slots);
    this.members = new Int32Array(memory.buffer, this.membersAt, slots);
    this.bucketMass = new Float64Array(memory.buffer, MASS_AT, EXP_OF_BUCKET.length);
    this.capacity = size;
  }
}

// Node has WebAssembly; the TypeScript libs this project compiles with (ES2024, no DOM) do not
// declare it, so the few members used here are declared by hand.
const wasm = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object) => { exports: unknown } } }).WebAssembly;

interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  nearCount: { value: number };
  nearMass: { value: number };
  maxOf(at: number, size: number): number;
  weigh(logits: number, weights: number, near: number, mass: number, size: number, best: number, inverse: number): number;
  membersOf(logits: number, ids: number, count: number, out: number, best: number, inverse: number, bucket: number): number;
}

// A logit this far (times the temperature) below the best gets weight 0: e^-64 is 1.6e-28 of the
// best's weight 1, so even a million such tokens together hold less than 2^-53 of the total, which
// float64 sums cannot see; dropping them changes no sum, no nucleus and no draw. weigh-kernel.wat
// has these two numbers written in; its tests hold its weights to temperedWeight()'s.
export const MAX_GAP = 64;
export const BUCKETS_PER_UNIT = 64;
export const GAP_BUCKETS = MAX_GAP * BUCKETS_PER_UNIT;
/** weigh() gathers the ids less than this gap below the best (16 is written into the .wat too): buckets 0..1023. */
export const NEAR_GAP = 16;
export const NEAR_BUCKETS = NEAR_GAP * BUCKETS_PER_UNIT;
/** e^-(k/64) for every bucket k = 0..4096, the table temperedWeight() and the kernel share. */
export const EXP_OF_BUCKET = Float64Array.from({ length: GAP_BUCKETS + 1 }, (_, k) => Math.exp(-k / BUCKETS_PER_UNIT));

const align16 = (offset: number) => (offset + 15) & ~15;
/** Where the bucket masses sit: right after the table, one float64 per table entry. */
const MASS_AT = align16(EXP_OF_BUCKET.length * 8);
