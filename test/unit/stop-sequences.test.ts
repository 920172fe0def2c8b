import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StopSequenceError, StopSequenceMatcher } from '../../src/engine/stop-sequences.js';

/**
 * The oracle, written plainly: grow the text one UTF-16 unit at a time and stop at the first
 * length where some stop string appears; cut at that stop string's start.
 */
function truncateAtFirstStop(text: string, stops: readonly string[]): { text: string; stopped: boolean } {
  const nonEmpty = stops.filter((s) => s.length > 0);
  for (let end = 1; end <= text.length; end++) {
    const prefix = text.slice(0, end);
    const hits = nonEmpty.filter((s) => prefix.endsWith(s));
    if (hits.length > 0) {
      const longest = Math.max(...hits.map((s) => s.length));
      return { text: text.slice(0, end - longest), stopped: true };
    }
  }
  return { text, stopped: false };
}

/** Splits text at the given cut points (any order, duplicates allowed). */
function chunksOf(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let last = 0;
  for (const point of [...points, text.length]) {
    chunks.push(text.slice(last, point));
    last = point;
  }
  return chunks;
}

// A tiny alphabet makes stop strings and near-misses frequent.
const smallText = (maxLength: number) => fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\n', '😀'), maxLength });

describe('StopSequenceMatcher', () => {
  it('emits exactly the text before the first stop string to complete, for any chunking', () => {
    fc.assert(
      fc.property(
        smallText(60),
        fc.array(smallText(4), { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (text, stops, cuts) => {
          const matcher = new StopSequenceMatcher(stops);
          let emitted = '';
          let stopped = false;
          for (const chunk of chunksOf(text, cuts)) {
            const result = matcher.push(chunk);
            if (stopped) expect(result).toEqual({ emit: '', stopped: true });
            emitted += result.emit;
            stopped ||= result.stopped;
          }
          if (!stopped) emitted += matcher.flush();
          expect({ text: emitted, stopped }).toEqual(truncateAtFirstStop(text, stops));
          expect(matcher.flush()).toBe('');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('holds back only the longest tail that could still begin a stop string', () => {
    fc.assert(
      fc.property(smallText(40), fc.array(smallText(4), { minLength: 1, maxLength: 4 }), (text, stops) => {
        const matcher = new StopSequenceMatcher(stops);
        let seen = '';
        let emitted = '';
        for (const char of text) {
          seen += char;
          const result = matcher.push(char);
          emitted += result.emit;
          if (result.stopped) return;
          const held = seen.slice(emitted.length);
          expect(seen.startsWith(emitted)).toBe(true);
          const candidates = stops.filter((s) => s.length > 0).flatMap((s) => [...Array(s.length).keys()].map((n) => s.slice(0, n)));
          const longest = Math.max(0, ...candidates.filter((p) => seen.endsWith(p)).map((p) => p.length));
          expect(held.length).toBe(longest);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('stops at the stop string that completes first, not the one that starts first', () => {
    const matcher = new StopSequenceMatcher(['c😀b', '😀']);
    expect(matcher.push('c😀b')).toEqual({ emit: 'c', stopped: true });
  });

  it('stops on a string split across chunks and drops everything after it', () => {
    const matcher = new StopSequenceMatcher(['###', 'END']);
    expect(matcher.push('Hello #')).toEqual({ emit: 'Hello ', stopped: false });
    expect(matcher.push('#')).toEqual({ emit: '', stopped: false });
    expect(matcher.push('! E')).toEqual({ emit: '##! ', stopped: false });
    expect(matcher.push('NDING and more')).toEqual({ emit: '', stopped: true });
    expect(matcher.push('later')).toEqual({ emit: '', stopped: true });
    expect(matcher.flush()).toBe('');
  });

  it('picks the earliest stop string when several match', () => {
    const matcher = new StopSequenceMatcher(['world', 'o w']);
    expect(matcher.push('hello world')).toEqual({ emit: 'hell', stopped: true });
  });

  it('passes text straight through without stop strings, and ignores empty ones', () => {
    const matcher = new StopSequenceMatcher(['']);
    expect(matcher.push('anything')).toEqual({ emit: 'anything', stopped: false });
    expect(matcher.flush()).toBe('');
  });

  it('returns held-back text on flush when no stop string completed', () => {
    const matcher = new StopSequenceMatcher(['</answer>']);
    expect(matcher.push('42 </ans')).toEqual({ emit: '42 ', stopped: false });
    expect(matcher.flush()).toBe('</ans');
  });

  it('rejects more than four stop strings with a typed error', () => {
    expect(() => new StopSequenceMatcher(['a', 'b', 'c', 'd', 'e'])).toThrow(StopSequenceError);
    expect(() => new StopSequenceMatcher(['a', 'b', 'c', 'd'])).not.toThrow();
  });
});
