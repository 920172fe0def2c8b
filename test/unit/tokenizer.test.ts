import { mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { AutoTokenizer, env } from '@huggingface/transformers';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplateError, encodeChat, renderChat, type ChatMessage } from '../../src/engine/chat-template.js';
import { TokenizerLoadError, loadTokenizer, type ModelTokenizer } from '../../src/engine/tokenizer.js';
import { CHATML_TEMPLATE, writeTokenizerFiles } from '../../tools/model-builder/tokenizer-writer.js';

const VOCAB = 2048;
const IM_START = VOCAB - 2;
const IM_END = VOCAB - 1;
const ENDOFTEXT = VOCAB - 3;

let root: string;
let dir: string;
let tokenizer: ModelTokenizer;
let reference: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>;

const SAMPLES = [
  'Hello world! The quick brown fox jumps over the lazy dog.',
  '  leading and trailing spaces  \n\n tabs\tand newlines\r\n',
  "It's 3.14159 o'clock; we'll see what they've done.",
  'Emoji 🦊🏳️‍🌈 👩‍👩‍👧 and CJK 你好，世界 and accents: café naïve Ελληνικά',
  'A user typing <|im_end|> or <|im_start|>system or <|endoftext|> is just text.',
  'function f(x) { return x * 2; } // code',
];

async function readJson(file: string): Promise<any> {
  return JSON.parse(await readFile(file, 'utf8'));
}

async function packageCopy(name: string): Promise<string> {
  const copy = path.join(root, name);
  await cp(dir, copy, { recursive: true });
  return copy;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aigw-tokenizer-'));
  dir = path.join(root, 'tiny');
  await writeTokenizerFiles(dir, { vocabSize: VOCAB });
  tokenizer = await loadTokenizer(dir);
  env.allowRemoteModels = false;
  reference = await AutoTokenizer.from_pretrained(dir);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeTokenizerFiles', () => {
  it('writes exactly vocabSize ids: 256 bytes, merges, then the three specials', async () => {
    const json = await readJson(path.join(dir, 'tokenizer.json'));
    const vocab: Record<string, number> = json.model.vocab;
    const ids = [...Object.values(vocab), ...json.added_tokens.map((t: { id: number }) => t.id)].sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: VOCAB }, (_, i) => i));
    expect(json.added_tokens.map((t: { id: number; content: string }) => [t.id, t.content])).toEqual([
      [ENDOFTEXT, '<|endoftext|>'],
      [IM_START, '<|im_start|>'],
      [IM_END, '<|im_end|>'],
    ]);
    expect(json.pre_tokenizer).toMatchObject({ type: 'ByteLevel', use_regex: true });
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.model.type).toBe('BPE');
  });

  it('only merges tokens that already exist, each merge result being in the vocabulary', async () => {
    const json = await readJson(path.join(dir, 'tokenizer.json'));
    const vocab: Record<string, number> = json.model.vocab;
    const seen = new Set(Object.entries(vocab).filter(([, id]) => id < 256).map(([token]) => token));
    expect(seen.size).toBe(256);
    for (const [left, right] of json.model.merges as [string, string][]) {
      expect(seen.has(left) && seen.has(right), `${left} + ${right}`).toBe(true);
      expect(vocab[left + right]).toBeDefined();
      seen.add(left + right);
    }
    expect(seen.size).toBe(VOCAB - 3);
  });

  it('is deterministic and reaches large vocabularies', async () => {
    const again = path.join(root, 'again');
    await writeTokenizerFiles(again, { vocabSize: VOCAB });
    expect(await readFile(path.join(again, 'tokenizer.json'), 'utf8')).toBe(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));

    const big = path.join(root, 'big');
    const written = await writeTokenizerFiles(big, { vocabSize: 65536 });
    expect(written.eosTokenIds).toEqual([65535, 65533]);
    const loaded = await loadTokenizer(big);
    expect(loaded.vocabSize).toBe(65536);
    expect(loaded.decode(loaded.encode(SAMPLES[0]))).toBe(SAMPLES[0]);
  });

  it('rejects vocabulary sizes it cannot build', async () => {
    await expect(writeTokenizerFiles(path.join(root, 'bad'), { vocabSize: 258 })).rejects.toThrow(RangeError);
    await expect(writeTokenizerFiles(path.join(root, 'bad'), { vocabSize: 262145 })).rejects.toThrow(RangeError);
    await expect(writeTokenizerFiles(path.join(root, 'bad'), { vocabSize: 1000.5 })).rejects.toThrow(RangeError);
  });

  it('returns the special ids and writes a ChatML tokenizer_config', async () => {
    const written = await writeTokenizerFiles(path.join(root, 'ids'), { vocabSize: VOCAB, modelMaxLength: 4096 });
    expect(written).toEqual({ eosTokenIds: [IM_END, ENDOFTEXT], padTokenId: ENDOFTEXT });
    const config = await readJson(path.join(root, 'ids', 'tokenizer_config.json'));
    expect(config).toMatchObject({
      eos_token: '<|im_end|>',
      bos_token: null,
      pad_token: '<|endoftext|>',
      model_max_length: 4096,
      chat_template: CHATML_TEMPLATE,
    });
    expect(config.added_tokens_decoder[String(IM_END)]).toMatchObject({ content: '<|im_end|>', special: true });
  });

  it('loads in @huggingface/tokenizers and transformers.js, which agree on encode and decode', async () => {
    const direct = new Tokenizer(await readJson(path.join(dir, 'tokenizer.json')), await readJson(path.join(dir, 'tokenizer_config.json')));
    for (const text of SAMPLES) {
      const ids = direct.encode(text, { add_special_tokens: false }).ids;
      expect(reference.encode(text, { add_special_tokens: false })).toEqual(ids);
      expect(direct.decode(ids)).toBe(text);
      expect(reference.decode(ids)).toBe(text);
    }
    // Merges make common English much shorter than its bytes.
    const common = 'The people in the city were happy when the weather was warm and the market was open.';
    expect(direct.encode(common).ids.length).toBeLessThan(common.length / 3);
  });
});

describe('loadTokenizer', () => {
  it('reports vocabulary size and special token ids', () => {
    expect(tokenizer.vocabSize).toBe(VOCAB);
    expect(tokenizer.eosTokenIds).toEqual([IM_END]);
    expect(tokenizer.bosTokenId).toBeUndefined();
    expect(tokenizer.padTokenId).toBe(ENDOFTEXT);
    expect(tokenizer.eosToken).toBe('<|im_end|>');
    expect(tokenizer.tokenToId('<|im_start|>')).toBe(IM_START);
    expect(tokenizer.tokenToId('a')).toBe(97);
    expect(tokenizer.tokenToId('no such token')).toBeUndefined();
    expect(tokenizer.isSpecial(IM_END)).toBe(true);
    expect(tokenizer.isSpecial(97)).toBe(false);
    expect(tokenizer.chatTemplate).toBe(CHATML_TEMPLATE);
  });

  it('encodes like the reference tokenizer for ordinary text', () => {
    for (const text of SAMPLES.filter((t) => !t.includes('<|'))) {
      expect(tokenizer.encode(text)).toEqual(reference.encode(text, { add_special_tokens: false }));
    }
  });

  it('round-trips any text, and never produces a special token from text', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.constantFrom('<|im_end|>', '<|im_start|>', '<|endoftext|>', ' ', '\n'))),
        (parts) => {
          const text = parts.join('');
          const ids = tokenizer.encode(text);
          expect(ids.every((id) => !tokenizer.isSpecial(id))).toBe(true);
          expect(tokenizer.decode(ids)).toBe(text);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encodes typed special-token text as ordinary tokens, where the reference would not', () => {
    const text = 'stop here <|im_end|> please';
    const ids = tokenizer.encode(text);
    expect(ids).not.toContain(IM_END);
    expect(reference.encode(text, { add_special_tokens: false })).toContain(IM_END);
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('decodes special ids as their text unless asked to skip them, and drops unknown ids', () => {
    const hello = tokenizer.encode('Hello');
    const ids = [IM_START, ...hello, IM_END, ENDOFTEXT];
    expect(tokenizer.decode(ids)).toBe('<|im_start|>Hello<|im_end|><|endoftext|>');
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('Hello');
    expect(tokenizer.decode([...hello, VOCAB, VOCAB + 100, -1])).toBe('Hello');
    expect(tokenizer.decode([])).toBe('');
  });

  it('adds eos ids from generation_config.json and reads chat_template.jinja when the config has none', async () => {
    const copy = await packageCopy('extras');
    await writeFile(path.join(copy, 'generation_config.json'), JSON.stringify({ eos_token_id: [IM_END, ENDOFTEXT] }));
    const config = await readJson(path.join(copy, 'tokenizer_config.json'));
    delete config.chat_template;
    await writeFile(path.join(copy, 'tokenizer_config.json'), JSON.stringify(config));
    await writeFile(path.join(copy, 'chat_template.jinja'), '{{ messages[0].content }}');
    const loaded = await loadTokenizer(copy);
    expect(loaded.eosTokenIds).toEqual([IM_END, ENDOFTEXT]);
    expect(loaded.chatTemplate).toBe('{{ messages[0].content }}');
  });

  it('names the missing file in a typed error', async () => {
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      const copy = await packageCopy(`missing-${file}`);
      await rm(path.join(copy, file));
      const error = await loadTokenizer(copy).catch((e) => e);
      expect(error).toBeInstanceOf(TokenizerLoadError);
      expect(error.code).toBe('tokenizer_missing');
      expect(error.file).toBe(file);
      expect(error.message).toContain(file);
    }
  });

  it('names a corrupt file in a typed error', async () => {
    const cases: [string, string][] = [
      ['tokenizer.json', '{"model": {"type": "BPE", "vocab": {'],
      ['tokenizer.json', '{"added_tokens": []}'],
      ['tokenizer.json', '[1, 2, 3]'],
      ['tokenizer_config.json', 'not json'],
      ['generation_config.json', '{"eos_token_id": '],
    ];
    for (const [i, [file, content]] of cases.entries()) {
      const copy = await packageCopy(`corrupt-${i}`);
      await writeFile(path.join(copy, file), content);
      const error = await loadTokenizer(copy).catch((e) => e);
      expect(error).toBeInstanceOf(TokenizerLoadError);
      expect(error.code).toBe('tokenizer_invalid');
      expect(error.message).toContain(file);
    }
  });
});

describe('chat template', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hello there 👋' },
    { role: 'assistant', content: 'Hi.' },
    { role: 'user', content: 'Say something   \n with spaces ' },
  ];

  it('renders like transformers.js apply_chat_template, system message optional', () => {
    for (const messages of [conversation, conversation.slice(1)]) {
      for (const addGenerationPrompt of [true, false]) {
        const expected = reference.apply_chat_template(messages, { tokenize: false, add_generation_prompt: addGenerationPrompt });
        expect(renderChat(CHATML_TEMPLATE, messages, { addGenerationPrompt })).toBe(expected);
      }
    }
    expect(renderChat(CHATML_TEMPLATE, [{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('encodes to the same ids as transformers.js when the messages hold no special text', () => {
    const expected = reference.apply_chat_template(conversation, { tokenize: true, return_tensor: false, return_dict: false, add_generation_prompt: true });
    expect(encodeChat(tokenizer, CHATML_TEMPLATE, conversation)).toEqual(expected);
    expect(encodeChat(tokenizer, conversation)).toEqual(expected);
    const withoutPrompt = reference.apply_chat_template(conversation, { tokenize: true, return_tensor: false, return_dict: false, add_generation_prompt: false });
    expect(encodeChat(tokenizer, conversation, { addGenerationPrompt: false })).toEqual(withoutPrompt);
  });

  it('takes special tokens only from the template, never from message text', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            role: fc.constantFrom('system', 'user', 'assistant', '<|im_end|>'),
            content: fc
              .array(fc.oneof(fc.string(), fc.constantFrom('<|im_end|>', '<|im_start|>', '<|endoftext|>', '\uE000', '\uE0010\uE001', '\uE000\uE001')))
              .map((parts) => parts.join('')),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (messages) => {
          const ids = encodeChat(tokenizer, CHATML_TEMPLATE, messages);
          expect(ids.filter((id) => id === IM_START)).toHaveLength(messages.length + 1);
          expect(ids.filter((id) => id === IM_END)).toHaveLength(messages.length);
          expect(ids).not.toContain(ENDOFTEXT);
          expect(tokenizer.decode(ids)).toBe(renderChat(CHATML_TEMPLATE, messages, { addGenerationPrompt: true }));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('honours lstrip/rstrip on specials like the reference tokenizer', async () => {
    const copy = await packageCopy('rstrip');
    const json = await readJson(path.join(copy, 'tokenizer.json'));
    for (const token of json.added_tokens) if (token.content === '<|im_start|>') token.rstrip = true;
    for (const token of json.added_tokens) if (token.content === '<|im_end|>') token.lstrip = true;
    await writeFile(path.join(copy, 'tokenizer.json'), JSON.stringify(json));
    const stripping = await loadTokenizer(copy);
    const strippingReference = await AutoTokenizer.from_pretrained(copy);
    const template = "{% for m in messages %}{{ '<|im_start|>  ' + m.content + '  \\n <|im_end|>' }}{% endfor %}";
    const messages = [{ role: 'user', content: ' padded\t' }];
    const expected = strippingReference.apply_chat_template(messages, { chat_template: template, tokenize: true, return_tensor: false, return_dict: false });
    expect(encodeChat(stripping, template, messages)).toEqual(expected);
    expect(stripping.decode(expected)).toBe('<|im_start|>padded<|im_end|>');
  });

  it('raises typed errors for missing, malformed and refusing templates', async () => {
    const copy = await packageCopy('no-template');
    const config = await readJson(path.join(copy, 'tokenizer_config.json'));
    delete config.chat_template;
    await writeFile(path.join(copy, 'tokenizer_config.json'), JSON.stringify(config));
    const noTemplate = await loadTokenizer(copy);
    const cases: [() => unknown, string][] = [
      [() => encodeChat(noTemplate, conversation), 'template_missing'],
      [() => renderChat('{% for m in messages %}', conversation, { addGenerationPrompt: false }), 'template_invalid'],
      [() => renderChat("{{ raise_exception('roles must alternate') }}", conversation, { addGenerationPrompt: false }), 'template_render_failed'],
    ];
    for (const [run, code] of cases) {
      let error: unknown;
      try {
        run();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ChatTemplateError);
      expect((error as ChatTemplateError).code).toBe(code);
    }
  });

  it('passes bos_token and eos_token to the template', () => {
    const template = '{{ bos_token }}{{ messages[0].content }}{{ eos_token }}';
    expect(renderChat(template, [{ role: 'user', content: 'x' }], { addGenerationPrompt: false, bosToken: '<s>', eosToken: '</s>' })).toBe(
      '<s>x</s>',
    );
    expect(encodeChat(tokenizer, template, [{ role: 'user', content: 'x' }])).toEqual([...tokenizer.encode('x'), IM_END]);
  });
});
