import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamingDetokenizer } from '../../src/engine/streaming-detokenizer.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/engine/tokenizer.js';
import { writeTokenizerFiles } from '../../tools/model-builder/tokenizer-writer.js';

const VOCAB = 2048;
const IM_START = VOCAB - 2;
const IM_END = VOCAB - 1;

let root: string;
let tokenizer: ModelTokenizer;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aigw-detok-'));
  await writeTokenizerFiles(root, { vocabSize: VOCAB });
  tokenizer = await loadTokenizer(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function stream(ids: readonly number[], detokenizer = new StreamingDetokenizer(tokenizer)): string[] {
  const chunks = ids.map((id) => detokenizer.push(id));
  chunks.push(detokenizer.flush());
  return chunks;
}

// The tokenizer as-is, recording how many ids each decode is asked to look at.
function recordingTokenizer(lengths: number[]): ModelTokenizer {
  return {
    ...tokenizer,
    decode: (ids, options) => {
      lengths.push(ids.length);
      return tokenizer.decode(ids, options);
    },
  };
}

// No lone surrogates: the string survives a UTF-8 round trip (String#isWellFormed is ES2024).
const isWellFormed = (s: string) => new TextDecoder().decode(new TextEncoder().encode(s)) === s;

const textArbitrary = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.string({ unit: 'binary' }).filter(isWellFormed),
      fc.constantFrom('🦊', '👩‍👩‍👧', '🏳️‍🌈', '你好世界', 'naïve café', ' the ', '\n'),
    ),
  )
  // U+FFFD is the decoder's own mark for broken bytes; keep it out so its absence means something.
  .map((parts) => parts.join('').replaceAll('\uFFFD', ''));

describe('StreamingDetokenizer', () => {
  it('streams exactly the decoded text, in chunks of whole characters', () => {
    fc.assert(
      fc.property(textArbitrary, (text) => {
        const chunks = stream(tokenizer.encode(text));
        for (const chunk of chunks) {
          expect(isWellFormed(chunk)).toBe(true);
          expect(chunk).not.toContain('\uFFFD');
        }
        expect(chunks.join('')).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('holds back the bytes of a character until it is complete', () => {
    const ids = tokenizer.encode('🦊');
    expect(ids).toEqual([0xf0, 0x9f, 0xa6, 0x8a]);
    expect(stream(ids)).toEqual(['', '', '', '🦊', '']);

    const cjk = tokenizer.encode('a你');
    expect(stream(cjk)).toEqual(['a', '', '', '你', '']);
  });

  it('emits each token as soon as its text is whole', () => {
    const ids = tokenizer.encode('the city was warm, 42 times!');
    expect(stream(ids)).toEqual([...ids.map((id) => tokenizer.decode([id])), '']);
  });

  it('skips special tokens by default and can keep them', () => {
    const ids = [IM_START, ...tokenizer.encode('hi'), IM_END];
    expect(stream(ids).join('')).toBe('hi');
    const keeping = new StreamingDetokenizer(tokenizer, { skipSpecialTokens: false });
    expect(stream(ids, keeping).join('')).toBe('<|im_start|>hi<|im_end|>');
  });

  it('flushes an unfinished character as U+FFFD and starts over', () => {
    const detokenizer = new StreamingDetokenizer(tokenizer);
    expect(detokenizer.push(0x61)).toBe('a');
    expect(detokenizer.push(0xf0)).toBe('');
    expect(detokenizer.push(0x9f)).toBe('');
    expect(detokenizer.flush()).toBe('\uFFFD');
    expect(detokenizer.flush()).toBe('');
    expect(stream(tokenizer.encode('ok'), detokenizer).join('')).toBe('ok');
  });

  it('lets invalid byte runs out as U+FFFD without losing the text around them', () => {
    const byteIds = fc.oneof(
      fc.integer({ min: 0x80, max: 0xff }),
      fc.integer({ min: 0xc0, max: 0xf4 }),
      fc.integer({ min: 0, max: VOCAB - 1 }),
      fc.constantFrom(IM_START, IM_END),
    );
    fc.assert(
      fc.property(fc.oneof(fc.array(byteIds, { maxLength: 15 }), fc.array(byteIds, { maxLength: 100 })), (ids) => {
        const chunks = stream(ids);
        for (const chunk of chunks) expect(isWellFormed(chunk)).toBe(true);
        const whole = tokenizer.decode(ids, { skipSpecialTokens: true });
        expect(chunks.join('').replaceAll('\uFFFD', '')).toBe(whole.replaceAll('\uFFFD', ''));
        // Text is only forced out after 16 pending tokens; before that the stream is exact.
        if (ids.length < 16) expect(chunks.join('')).toBe(whole);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes a bounded window per token, however long the generation', () => {
    const lengths: number[] = [];
    const detokenizer = new StreamingDetokenizer(recordingTokenizer(lengths));
    const text = 'The morning was quiet 🌅 and the 市场 was open. '.repeat(200);
    const ids = tokenizer.encode(text);
    expect(ids.length).toBeGreaterThan(3000);
    expect(stream(ids, detokenizer).join('')).toBe(text);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(8);

    // Long runs of skipped specials or broken bytes are let go of too.
    lengths.length = 0;
    const noisy = [...Array(500).fill(IM_START), ...Array(500).fill(0xc0), ...tokenizer.encode('end')];
    expect(stream(noisy, new StreamingDetokenizer(recordingTokenizer(lengths))).join('').endsWith('end')).toBe(true);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(32);
  });
});
