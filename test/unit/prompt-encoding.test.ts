// Long prompts: the byte bound never refuses a prompt that fits (checked against the Hugging Face
// tokenizers library on byte-level BPE and on SentencePiece-style BPE with byte fallback), the
// yielding encoder gives the library's ids exactly, and a prompt that can't fit is refused
// before anything is tokenized.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChat } from '../../src/engine/chat-template.js';
import { EngineError } from '../../src/engine/errors.js';
import { encodePrompt } from '../../src/engine/prompt.js';
import { encodeYielding, minimumTokens, tokenBound } from '../../src/engine/prompt-encoding.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/engine/tokenizer.js';
import { writeTokenizerFiles } from '../../tools/model-builder/tokenizer-writer.js';

let root: string;
let byteLevel: ModelTokenizer;
let byteLevelPlain: Tokenizer;

/** A small Llama-2-style tokenizer.json: ▁ for spaces, merges, every <0xNN> byte token. */
function sentencePieceJson() {
  const vocab: Record<string, number> = { '<unk>': 0 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = Object.keys(vocab).length;
  const pieces = ['▁', 'a', 'b', 'c', 'é', '▁a', 'ab', '▁ab', 'abc', '▁abc', '▁abcabc', 'cé'];
  for (const piece of pieces) vocab[piece] = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [{ id: 0, content: '<unk>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: [['▁', 'a'], ['a', 'b'], ['▁a', 'b'], ['ab', 'c'], ['▁ab', 'c'], ['▁abc', 'abc'], ['c', 'é']],
    },
  };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aigw-prompt-'));
  const dir = path.join(root, 'tiny');
  await writeTokenizerFiles(dir, { vocabSize: 2048 });
  byteLevel = await loadTokenizer(dir);
  const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
  byteLevelPlain = new Tokenizer({ ...json, added_tokens: [] }, {});
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Words, spaces and newlines, non-Latin letters, emoji and lone punctuation: what pre-tokenizers split on.
const textPiece = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.constantFrom(' ', '  ', '\n', '\n\n', '\t', 'abc', ' abc', 'cé', "'s", '123', '🦊', '你好', '...'),
);
const text = fc.array(textPiece, { maxLength: 40 }).map((parts) => parts.join(''));

describe('the byte bound', () => {
  it('is provable for the byte-level BPE the builder writes, and never exceeds the real token count', () => {
    const bound = byteLevel.tokenBound;
    expect(bound).toBeDefined();
    fc.assert(
      fc.property(text, (t) => {
        expect(minimumTokens(t, bound)).toBeLessThanOrEqual(byteLevel.encode(t).length);
      }),
      { seed: 8, numRuns: 400 },
    );
  });

  it('is provable for SentencePiece-style BPE with byte fallback (▁ counts as one byte) and never exceeds the real count', () => {
    const json = sentencePieceJson();
    const bound = tokenBound(json, []);
    // The longest piece, ▁abcabc, covers 7 bytes of input: a space and six letters.
    expect(bound).toEqual({ longest: 7 });
    const sp = new Tokenizer(json, {});
    const spText = fc.array(fc.constantFrom(' ', 'a', 'b', 'c', 'é', 'abc', ' abcabc', 'x', '🦊', '\n'), { maxLength: 60 }).map((p) => p.join(''));
    fc.assert(
      fc.property(spText, (t) => {
        expect(minimumTokens(t, bound)).toBeLessThanOrEqual(sp.encode(t, { add_special_tokens: false }).ids.length);
      }),
      { seed: 8, numRuns: 400 },
    );
    // A text made of the longest piece meets the bound exactly (the prepended ▁ makes the first one).
    const tight = 'abcabc' + ' abcabc'.repeat(9);
    expect(sp.encode(tight, { add_special_tokens: false }).ids.length).toBe(10);
    expect(minimumTokens(tight, bound)).toBe(10);
  });

  it('is withheld when a normalizer may shrink the text or byte fallback is incomplete', () => {
    const json = sentencePieceJson();
    expect(tokenBound({ ...json, normalizer: { type: 'NFKC' } }, [])).toBeUndefined();
    expect(tokenBound({ ...json, normalizer: { type: 'Lowercase' } }, [])).toBeUndefined();
    expect(tokenBound({ ...json, normalizer: { type: 'NFC' } }, [])).toEqual({ longest: 7, countForm: 'NFC' });
    const vocab = { ...json.model.vocab } as Record<string, number>;
    delete vocab['<0x41>'];
    expect(tokenBound({ ...json, model: { ...json.model, vocab } }, [])).toBeUndefined();
    expect(tokenBound({ ...json, model: { ...json.model, type: 'Unigram' } }, [])).toBeUndefined();
  });
});

describe('the yielding encoder', () => {
  it('gives exactly the library encode ids, for long texts too', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(text, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 400 }), async (parts, repeat) => {
        // Long enough (> 16 K characters) for the pre-token path, not only the one-call path.
        const long = parts.join(' ').repeat(repeat);
        expect(await encodeYielding(byteLevelPlain, long)).toEqual(byteLevelPlain.encode(long, { add_special_tokens: false }).ids);
      }),
      { seed: 8, numRuns: 40 },
    );
  });

  it('lets timers run while a long prompt is tokenized', async () => {
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(20_000); // 900 KB
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await encodeYielding(byteLevelPlain, long);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
  });
});

describe('encodePrompt', () => {
  it('refuses a prompt that provably cannot fit before tokenizing any of it', async () => {
    let tokenized = 0;
    const watched: ModelTokenizer = { ...byteLevel, encodeYielding: async (t) => ((tokenized += t.length), byteLevel.encodeYielding(t)) };
    const huge = 'a'.repeat(1024 * 1024);
    const refusal = encodePrompt(watched, { kind: 'chat', messages: [{ role: 'user', content: huge }] }, 2048);
    await expect(refusal).rejects.toBeInstanceOf(EngineError);
    await expect(refusal).rejects.toMatchObject({ code: 'context_length_exceeded' });
    await expect(encodePrompt(watched, { kind: 'text', prompt: huge }, 2048)).rejects.toMatchObject({ code: 'context_length_exceeded' });
    expect(tokenized).toBe(0);
  });

  it('counts the completion the request asks for, and encodes what fits exactly as encodeChat does', async () => {
    const messages = [{ role: 'user', content: 'Hello there, how are you?' }];
    const ids = await encodePrompt(byteLevel, { kind: 'chat', messages }, 2048);
    expect(ids).toEqual(encodeChat(byteLevel, messages));
    // 30 bytes over a longest token of L bytes: at least ceil(30 / L) tokens; no room for 2048 more.
    await expect(encodePrompt(byteLevel, { kind: 'text', prompt: 'x'.repeat(30) }, 2048, 2048)).rejects.toMatchObject({ code: 'context_length_exceeded' });
    expect(await encodePrompt(byteLevel, { kind: 'text', prompt: 'hello' }, 2048, 16)).toEqual(byteLevel.encodeWithSpecialTokens('hello'));
  });
});
