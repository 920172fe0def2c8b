import { describe, expect, it } from 'vitest';
import { REPLAYED_TOKEN_ID, recorder, replay, type CachedGeneration } from '../../src/cache/index.js';
import type { GenerationEvent } from '../../src/engine/index.js';

const usage = { promptTokens: 5, completionTokens: 4 };
const events: GenerationEvent[] = [
  { type: 'token', tokenId: 11, text: 'Hel' },
  { type: 'token', tokenId: 12, text: '' },
  { type: 'token', tokenId: 13, text: 'lo, ' },
  { type: 'finish', finishReason: 'stop', text: 'wörld', usage },
];

/** A generation-like source that records whether it was closed and can fail after some events. */
function source(items: readonly GenerationEvent[], failAfter?: number) {
  const state = { closed: false };
  async function* run(): AsyncGenerator<GenerationEvent> {
    try {
      for (let i = 0; i < items.length; i++) {
        if (i === failAfter) throw new Error('decoder step failed');
        yield items[i];
      }
    } finally {
      state.closed = true;
    }
  }
  return { run: run(), state };
}

async function drain(iterable: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const seen: GenerationEvent[] = [];
  for await (const event of iterable) seen.push(event);
  return seen;
}

describe('recorder', () => {
  it('passes every event through unchanged and hands back the entry of a finished generation', async () => {
    const before = Math.floor(Date.now() / 1000);
    const recording = recorder(source(events).run);
    const seen = await drain(recording.events);
    expect(seen).toHaveLength(events.length);
    seen.forEach((event, i) => expect(event).toBe(events[i]));

    const entry = await recording.completed;
    expect(entry).toEqual({ deltas: ['Hel', 'lo, ', 'wörld'], finishReason: 'stop', usage, createdAt: expect.any(Number) });
    expect(entry!.createdAt).toBeGreaterThanOrEqual(before);
    expect(entry!.usage).not.toBe(usage);
  });

  it('hands back nothing when the source fails mid-way, and the consumer still sees the error', async () => {
    const recording = recorder(source(events, 2).run);
    await expect(drain(recording.events)).rejects.toThrow('decoder step failed');
    expect(await recording.completed).toBeUndefined();
  });

  it('hands back nothing when the consumer stops before the finish event, and closes the source', async () => {
    const { run, state } = source(events);
    const recording = recorder(run);
    for await (const event of recording.events) {
      if (event.type === 'token') break;
    }
    expect(await recording.completed).toBeUndefined();
    expect(state.closed).toBe(true);
  });

  it('hands back nothing when stopped before the first event is read', async () => {
    const recording = recorder(source(events).run);
    await recording.events[Symbol.asyncIterator]().return!();
    expect(await recording.completed).toBeUndefined();
  });

  it('hands back nothing when the source ends without a finish event', async () => {
    const recording = recorder(source(events.slice(0, 3)).run);
    expect(await drain(recording.events)).toHaveLength(3);
    expect(await recording.completed).toBeUndefined();
  });

  it('keeps the entry when the consumer stops right after the finish event', async () => {
    const recording = recorder(source(events).run);
    for await (const event of recording.events) {
      if (event.type === 'finish') break;
    }
    expect((await recording.completed)?.deltas).toEqual(['Hel', 'lo, ', 'wörld']);
  });
});

describe('replay', () => {
  const entry: CachedGeneration = { deltas: ['Hel', 'lo, ', 'wörld'], finishReason: 'length', usage, createdAt: 1_700_000_000 };

  it('yields one token event per delta, then the finish event with empty text and the usage', async () => {
    expect(await drain(replay(entry))).toEqual([
      { type: 'token', tokenId: REPLAYED_TOKEN_ID, text: 'Hel' },
      { type: 'token', tokenId: REPLAYED_TOKEN_ID, text: 'lo, ' },
      { type: 'token', tokenId: REPLAYED_TOKEN_ID, text: 'wörld' },
      { type: 'finish', finishReason: 'length', text: '', usage },
    ]);
  });

  it('replays a recording to the same text, boundaries, finish reason and usage', async () => {
    const first = recorder(source(events).run);
    const original = await drain(first.events);
    const recorded = (await first.completed)!;

    const second = recorder(replay(recorded));
    const replayed = await drain(second.events);
    const text = (list: GenerationEvent[]) => list.map((e) => e.text).join('');
    expect(text(replayed)).toBe(text(original));
    expect(replayed.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop', usage });
    expect((await second.completed)?.deltas).toEqual(recorded.deltas);
  });

  it('replays an empty completion as a lone finish event', async () => {
    const empty: CachedGeneration = { deltas: [], finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 1 }, createdAt: 0 };
    expect(await drain(replay(empty))).toEqual([{ type: 'finish', finishReason: 'stop', text: '', usage: empty.usage }]);
  });
});
