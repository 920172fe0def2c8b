// A finished generation as the cache keeps it: the text deltas with their boundaries, the finish
// reason and usage. Recording wraps a live event stream; replay turns an entry back into events
// the gateway serves exactly like a fresh generation, as JSON or as SSE.
import type { FinishReason, GenerationEvent, Usage } from '../engine/index.js';

export interface CachedGeneration {
  /** Text of each event in order (the finish event's held-back text last), empty ones dropped. */
  deltas: string[];
  finishReason: FinishReason;
  usage: Usage;
  /** Unix seconds when the generation finished. */
  createdAt: number;
}

/** Replayed tokens have no id: the entry keeps text, not token ids. */
export const REPLAYED_TOKEN_ID = -1;

/** One token event per delta, then the finish event (with empty text: the deltas already hold it). */
export async function* replay(entry: CachedGeneration): AsyncGenerator<GenerationEvent, void, undefined> {
  for (const text of entry.deltas) yield { type: 'token', tokenId: REPLAYED_TOKEN_ID, text };
  yield { type: 'finish', finishReason: entry.finishReason, text: '', usage: { ...entry.usage } };
}

export interface GenerationRecording {
  /** The source's events, unchanged; iterate it once. */
  readonly events: AsyncIterable<GenerationEvent>;
  /**
   * The entry, as soon as the finish event has been read from the source; undefined when the
   * stream errors, ends without a finish event, or is stopped early (return()) before it.
   */
  readonly completed: Promise<CachedGeneration | undefined>;
}

/**
 * Records a generation while it streams to the client. Only a generation that reached its
 * finish event yields an entry: a partial one (client gone, error, abort) must never be cached.
 */
export function recorder(source: AsyncIterable<GenerationEvent>): GenerationRecording {
  let settle!: (entry: CachedGeneration | undefined) => void;
  const completed = new Promise<CachedGeneration | undefined>((resolve) => (settle = resolve));
  const deltas: string[] = [];
  let finished = false;

  const observe = (event: GenerationEvent): void => {
    if (finished) return;
    if (event.text) deltas.push(event.text);
    if (event.type !== 'finish') return;
    finished = true;
    const usage = { promptTokens: event.usage.promptTokens, completionTokens: event.usage.completionTokens };
    settle({ deltas, finishReason: event.finishReason, usage, createdAt: Math.floor(Date.now() / 1000) });
  };

  // A hand-written iterator rather than a generator: a generator stopped before its first next()
  // never runs its finally, which would leave `completed` pending forever.
  const events: AsyncIterable<GenerationEvent> = {
    [Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
      const inner = source[Symbol.asyncIterator]();
      return {
        async next() {
          let result: IteratorResult<GenerationEvent>;
          try {
            result = await inner.next();
          } catch (error) {
            settle(undefined);
            throw error;
          }
          if (result.done) settle(undefined);
          else observe(result.value);
          return result;
        },
        async return(value?: unknown) {
          settle(undefined);
          if (inner.return) return inner.return(value);
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { events, completed };
}
