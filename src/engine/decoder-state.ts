import ort from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { DecoderIo, IntegerType } from './decoder-io.js';
import { EngineError } from './errors.js';

/**
 * One sequence's KV cache and positions. `step` runs the decoder over new tokens (the prompt,
 * then one token per decode step) and returns the logits of the last position.
 */
export interface DecoderState {
  step(tokenIds: readonly number[]): Promise<Float32Array>;
  /** Tokens already in the cache. */
  readonly length: number;
  /** Positions the cache's buffers hold now (at least `length`, at most the state's maxLength). */
  readonly capacity: number;
}

/** Room the shared KV buffers get past the tokens in them, each time they grow. */
const KV_GROWTH_POSITIONS = 128;

/**
 * As the export says (io.sharedKvBuffer, from genai_config's search.past_present_share_buffer):
 * growing: the cache grows each step (present = concat(past, new)); each step's present outputs
 * are fed back as the next step's past, unchanged (Optimum exports, genai exports without sharing).
 * shared: past and present share one buffer per layer that GroupQueryAttention updates in place;
 * the buffers grow by `growthPositions` (up to `maxLength`) when a step needs more room.
 */
export function createDecoderState(
  session: InferenceSession,
  io: DecoderIo,
  maxLength: number,
  growthPositions = KV_GROWTH_POSITIONS,
): DecoderState {
  return io.sharedKvBuffer ? new SharedBufferState(session, io, maxLength, growthPositions) : new GrowingCacheState(session, io, maxLength);
}

abstract class BaseState implements DecoderState {
  length = 0;
  abstract readonly capacity: number;
  private readonly ones: BigInt64Array | Int32Array;

  constructor(
    protected readonly session: InferenceSession,
    protected readonly io: DecoderIo,
    protected readonly maxLength: number,
  ) {
    this.ones = io.attentionMaskType === 'int32' ? new Int32Array(maxLength).fill(1) : new BigInt64Array(maxLength).fill(1n);
  }

  async step(tokenIds: readonly number[]): Promise<Float32Array> {
    const count = tokenIds.length;
    const total = this.length + count;
    if (count === 0) throw new EngineError('generation_failed', 'a decoder step needs at least one token');
    if (total > this.maxLength) {
      throw new EngineError('context_length_exceeded', `the sequence would grow to ${total} tokens, past the ${this.maxLength} allowed`);
    }
    const feeds: Record<string, Tensor> = {
      [this.io.inputIds]: integerTensor(this.io.inputIdsType, count, (i) => tokenIds[i]!),
    };
    if (this.io.attentionMask) {
      // All ones: a single unpadded sequence. A view on a shared buffer, so no per-step allocation.
      feeds[this.io.attentionMask] = new ort.Tensor(this.io.attentionMaskType, this.ones.subarray(0, total), [1, total]);
    }
    if (this.io.positionIds) {
      feeds[this.io.positionIds] = integerTensor(this.io.positionIdsType, count, (i) => this.length + i);
    }
    const fetches: Record<string, Tensor | null> = { [this.io.logits]: null };
    this.bindCache(feeds, fetches, total);

    let outputs: InferenceSession.ReturnType;
    try {
      outputs = await this.session.run(feeds, fetches);
    } catch (error) {
      throw new EngineError('generation_failed', `onnxruntime failed during a decoder step: ${(error as Error).message}`, { cause: error });
    }
    this.afterRun(outputs);
    this.length = total;
    return lastRow(outputs[this.io.logits]!);
  }

  /** Adds the cache tensors to the feeds and the present outputs (or their buffers) to the fetches. */
  protected abstract bindCache(feeds: Record<string, Tensor>, fetches: Record<string, Tensor | null>, total: number): void;
  protected afterRun(_outputs: InferenceSession.ReturnType): void {}

  protected newKvTensor(sequenceLength: number): Tensor {
    const size = this.io.kvHeads * sequenceLength * this.io.headDim;
    const dims = [1, this.io.kvHeads, sequenceLength, this.io.headDim];
    return this.io.kvType === 'float16'
      ? new ort.Tensor('float16', new Uint16Array(size), dims)
      : new ort.Tensor('float32', new Float32Array(size), dims);
  }
}

class GrowingCacheState extends BaseState {
  private past: Tensor[] = [];

  get capacity(): number {
    return this.length;
  }

  protected bindCache(feeds: Record<string, Tensor>, fetches: Record<string, Tensor | null>): void {
    if (this.past.length === 0) {
      const empty = this.newKvTensor(0);
      this.past = this.io.layers.flatMap(() => [empty, empty]);
    }
    this.io.layers.forEach((layer, i) => {
      feeds[layer.pastKey] = this.past[2 * i]!;
      feeds[layer.pastValue] = this.past[2 * i + 1]!;
      // onnxruntime allocates each present tensor; it becomes next step's past as it is.
      // (Pre-allocating them from JS measured slower: 1.12x the bare loop instead of ~1.0x.)
      fetches[layer.presentKey] = null;
      fetches[layer.presentValue] = null;
    });
  }

  protected afterRun(outputs: InferenceSession.ReturnType): void {
    this.past = this.io.layers.flatMap((layer) => [outputs[layer.presentKey]!, outputs[layer.presentValue]!]);
  }
}

/**
 * The buffers hold the tokens so far plus `growthPositions` of room, and grow by as much again
 * when a step needs more, rather than holding maxLength (the prompt plus max_tokens) from the
 * start: onnxruntime-node copies every output it is handed back after each run, so a step costs
 * in proportion to the buffers' length, not to the tokens in them. Sized for 4,096 positions up
 * front, a decode step of the imported `bench` package 128 to 192 tokens in took 67-74 ms instead
 * of 20. Doubling, as they did before, still left up to twice the room needed: 600 tokens in, a
 * step took 22.3 ms with room for 1,024 positions and 19.1-19.4 with 601 or 664. A growth copies
 * the filled rows once, about what one step's copy-back costs, once every `growthPositions` steps.
 */
class SharedBufferState extends BaseState {
  private buffers: Tensor[] = [];
  capacity = 0;

  constructor(
    session: InferenceSession,
    io: DecoderIo,
    maxLength: number,
    private readonly growthPositions: number,
  ) {
    super(session, io, maxLength);
  }

  protected bindCache(feeds: Record<string, Tensor>, fetches: Record<string, Tensor | null>, total: number): void {
    if (total > this.capacity) this.grow(Math.min(this.maxLength, total + this.growthPositions));
    this.io.layers.forEach((layer, i) => {
      // The same tensor as input and output: GroupQueryAttention sees equal pointers and appends in place.
      feeds[layer.pastKey] = this.buffers[2 * i]!;
      feeds[layer.pastValue] = this.buffers[2 * i + 1]!;
      fetches[layer.presentKey] = this.buffers[2 * i]!;
      fetches[layer.presentValue] = this.buffers[2 * i + 1]!;
    });
  }

  /** New buffers of `capacity` positions, each head's first `length` rows copied over. */
  private grow(capacity: number): void {
    const { kvHeads, headDim } = this.io;
    const filled = this.length * headDim;
    const old = this.buffers;
    this.buffers = this.io.layers.flatMap(() => [this.newKvTensor(capacity), this.newKvTensor(capacity)]);
    old.forEach((tensor, j) => {
      const from = tensor.data as Float32Array | Uint16Array;
      const to = this.buffers[j]!.data as Float32Array | Uint16Array;
      for (let h = 0; h < kvHeads; h++) to.set(from.subarray(h * this.capacity * headDim, h * this.capacity * headDim + filled), h * capacity * headDim);
    });
    this.capacity = capacity;
  }
}

/** A [1, count] int64 or int32 tensor of value(0..count-1). */
function integerTensor(type: IntegerType, count: number, value: (i: number) => number): Tensor {
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from({ length: count }, (_, i) => value(i)), [1, count]);
  const data = new BigInt64Array(count);
  for (let i = 0; i < count; i++) data[i] = BigInt(value(i));
  return new ort.Tensor('int64', data, [1, count]);
}

/** The last position's logits, as a view when they are float32 (no copy of the vocabulary row). */
function lastRow(logits: Tensor): Float32Array {
  const vocab = logits.dims[logits.dims.length - 1]!;
  const data = logits.data;
  const start = data.length - vocab;
  if (data instanceof Float32Array) return data.subarray(start);
  if (data instanceof Uint16Array) return float16ToFloat32(data.subarray(start));
  throw new EngineError('model_incompatible', `unsupported logits type ${logits.type}`);
}

function float16ToFloat32(half: Uint16Array): Float32Array {
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    out[i] =
      exponent === 0
        ? sign * 2 ** -14 * (fraction / 1024)
        : exponent === 0x1f
          ? fraction
            ? NaN
            : sign * Infinity
          : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}
