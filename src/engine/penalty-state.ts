// Occurrence counts for the presence, frequency and repetition penalties, kept across a
// generation's steps so each step counts only the ids added since the last.
import type { SamplingContext } from './sampler.js';

/**
 * Token occurrence counts, kept incrementally: each step only the ids added since the last
 * step are counted. A context that is not a continuation of the last one starts over.
 */
export class PenaltyState {
  /** Prompt or generated: the repetition penalty's set. */
  private readonly seen: Uint8Array;
  private readonly seenIds: number[] = [];
  /** Occurrences among generated ids: presence and frequency penalties. */
  private readonly counts: Int32Array;
  private readonly countedIds: number[] = [];
  private prompt: readonly number[] | undefined;
  private promptDone = 0;
  private generatedDone = 0;

  constructor(private readonly vocabSize: number) {
    this.seen = new Uint8Array(vocabSize);
    this.counts = new Int32Array(vocabSize);
  }

  update({ promptIds, generatedIds }: SamplingContext): void {
    if (promptIds !== this.prompt || promptIds.length < this.promptDone || generatedIds.length < this.generatedDone) {
      this.reset(promptIds);
    }
    for (; this.promptDone < promptIds.length; this.promptDone++) this.markSeen(promptIds[this.promptDone]);
    for (; this.generatedDone < generatedIds.length; this.generatedDone++) {
      const id = generatedIds[this.generatedDone];
      if (!this.inVocab(id)) continue;
      this.markSeen(id);
      if (this.counts[id]++ === 0) this.countedIds.push(id);
    }
  }

  /** Penalizes logits in place; returns the original values of the touched ids, in seenIds order. */
  apply(logits: Float32Array, repetition: number, presence: number, frequency: number): Float32Array {
    const saved = new Float32Array(this.seenIds.length);
    for (let j = 0; j < this.seenIds.length; j++) {
      const id = this.seenIds[j];
      if (id >= logits.length) continue;
      const original = logits[id];
      saved[j] = original;
      let value = repetition === 1 ? original : original > 0 ? original / repetition : original * repetition;
      const count = this.counts[id];
      if (count > 0) value -= presence + frequency * count;
      logits[id] = value;
    }
    return saved;
  }

  restore(logits: Float32Array, saved: Float32Array): void {
    for (let j = 0; j < this.seenIds.length; j++) {
      const id = this.seenIds[j];
      if (id < logits.length) logits[id] = saved[j];
    }
  }

  private reset(promptIds: readonly number[]): void {
    for (const id of this.seenIds) this.seen[id] = 0;
    for (const id of this.countedIds) this.counts[id] = 0;
    this.seenIds.length = 0;
    this.countedIds.length = 0;
    this.prompt = promptIds;
    this.promptDone = 0;
    this.generatedDone = 0;
  }

  private markSeen(id: number): void {
    if (this.inVocab(id) && this.seen[id] === 0) {
      this.seen[id] = 1;
      this.seenIds.push(id);
    }
  }

  private inVocab(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize;
  }
}
