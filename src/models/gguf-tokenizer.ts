// GGUF `tokenizer.ggml.*` metadata as the Hugging Face tokenizer files the engine loads:
// `llama` (SentencePiece pieces with scores, <0xXX> byte fallback) becomes a byte-fallback BPE whose
// merges are ranked by the merged piece's score, which is how llama.cpp's SPM tokenizer merges;
// `gpt2` (byte-level BPE) keeps its merges and gets the pre-tokenizer regex `tokenizer.ggml.pre` names.
import { GgufImportError } from './errors.js';

export type GgufMetadata = Record<string, unknown>;

// llama_token_type values.
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

// llama.cpp's pre-tokenizer regexes (llama-vocab.cpp) for the `tokenizer.ggml.pre` names we support.
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const PRE_TOKENIZERS: Record<string, { regex: string; ignoreMerges: boolean }> = {
  qwen2: {
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ignoreMerges: false,
  },
  // Llama 3 (and its fine-tunes): whole words found in the vocabulary skip the merges.
  'llama-bpe': { regex: LLAMA3_SPLIT, ignoreMerges: true },
  'gpt-2': { regex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", ignoreMerges: false },
};

export interface ConvertedTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  /** The model's vocabulary size: the embedding rows the ids index. */
  vocabSize: number;
}

function stringArray(metadata: GgufMetadata, key: string, required: boolean): string[] | undefined {
  const value = metadata[key];
  if (value === undefined && !required) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new GgufImportError('invalid_gguf', `GGUF metadata ${key} is missing or not a list of strings`);
  }
  return value as string[];
}

function numberArray(metadata: GgufMetadata, key: string): number[] | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new GgufImportError('invalid_gguf', `GGUF metadata ${key} is not a list of numbers`);
  return value.map(Number);
}

function tokenId(metadata: GgufMetadata, key: string, size: number): number | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  const id = Number(value);
  if (!Number.isInteger(id) || id < 0 || id >= size) throw new GgufImportError('invalid_gguf', `GGUF metadata ${key}=${String(value)} is not a token id`);
  return id;
}

function addedToken(id: number, content: string, special: boolean) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

function bosPostProcessor(bos: string, bosId: number) {
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

// Every split of a piece into two pieces of the vocabulary is a merge, ranked by the piece's score
// (best first); ties keep vocabulary order, as Hugging Face's SentencePiece extractor does.
function sentencePieceMerges(tokens: string[], scores: number[], mergeable: (id: number) => boolean): [string, string][] {
  const ids = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (mergeable(id) && !ids.has(t)) ids.set(t, id);
  });
  const merges: { left: string; right: string; score: number; leftId: number; rightId: number }[] = [];
  for (const [piece, id] of ids) {
    const chars = [...piece];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      const leftId = ids.get(left);
      const rightId = ids.get(right);
      if (leftId !== undefined && rightId !== undefined) merges.push({ left, right, score: scores[id] ?? 0, leftId, rightId });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.leftId - b.leftId || a.rightId - b.rightId);
  return merges.map((m) => [m.left, m.right]);
}

/** Converts a GGUF file's tokenizer metadata; `vocabSize` is the embedding's row count. */
export function convertGgufTokenizer(metadata: GgufMetadata, vocabSize: number): ConvertedTokenizer {
  const model = metadata['tokenizer.ggml.model'];
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens', true)!;
  const types = numberArray(metadata, 'tokenizer.ggml.token_type') ?? tokens.map(() => TOKEN_TYPE.normal);
  const bosId = tokenId(metadata, 'tokenizer.ggml.bos_token_id', tokens.length);
  const eosId = tokenId(metadata, 'tokenizer.ggml.eos_token_id', tokens.length);
  const eotId = tokenId(metadata, 'tokenizer.ggml.eot_token_id', tokens.length);
  const padId = tokenId(metadata, 'tokenizer.ggml.padding_token_id', tokens.length);
  const unkId = tokenId(metadata, 'tokenizer.ggml.unknown_token_id', tokens.length);
  if (eosId === undefined) throw new GgufImportError('invalid_gguf', 'GGUF metadata has no tokenizer.ggml.eos_token_id; the model could never stop');

  // Control tokens (and user-defined ones, e.g. chat markers) are matched before the model runs.
  const added = tokens.flatMap((content, id) =>
    types[id] === TOKEN_TYPE.control || types[id] === TOKEN_TYPE.userDefined || types[id] === TOKEN_TYPE.unknown
      ? [addedToken(id, content, types[id] !== TOKEN_TYPE.userDefined)]
      : [],
  );
  const vocab = Object.fromEntries(tokens.map((t, id) => [t, id] as const).reverse());
  const bos = bosId === undefined ? undefined : tokens[bosId];
  const addBos = metadata['tokenizer.ggml.add_bos_token'] ?? (model === 'llama');

  let tokenizerJson: Record<string, unknown>;
  if (model === 'llama') {
    const scores = numberArray(metadata, 'tokenizer.ggml.scores') ?? tokens.map(() => 0);
    const addSpacePrefix = metadata['tokenizer.ggml.add_space_prefix'] ?? true;
    const mergeable = (id: number) => types[id] === TOKEN_TYPE.normal || types[id] === TOKEN_TYPE.userDefined;
    tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: {
        type: 'Sequence',
        normalizers: [
          ...(addSpacePrefix ? [{ type: 'Prepend', prepend: '▁' }] : []),
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: addBos && bos !== undefined ? bosPostProcessor(bos, bosId!) : null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: unkId === undefined ? null : tokens[unkId],
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges: sentencePieceMerges(tokens, scores, mergeable),
      },
    };
  } else if (model === 'gpt2') {
    const preName = String(metadata['tokenizer.ggml.pre'] ?? 'gpt-2');
    const pre = PRE_TOKENIZERS[preName];
    if (!pre) {
      throw new GgufImportError(
        'unsupported_tokenizer',
        `GGUF pre-tokenizer "${preName}" is not supported; supported: ${Object.keys(PRE_TOKENIZERS).join(', ')}`,
      );
    }
    const merges = stringArray(metadata, 'tokenizer.ggml.merges', true)!.map((m) => {
      const space = m.indexOf(' ', 1);
      return [m.slice(0, space), m.slice(space + 1)];
    });
    tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: pre.regex }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      post_processor: addBos && bos !== undefined ? bosPostProcessor(bos, bosId!) : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: pre.ignoreMerges,
        vocab,
        merges,
      },
    };
  } else {
    throw new GgufImportError('unsupported_tokenizer', `GGUF tokenizer model "${String(model)}" is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)`);
  }

  const eosTokenIds = [...new Set([eosId, ...(eotId === undefined ? [] : [eotId])])];
  const template = metadata['tokenizer.chat_template'];
  const tokenizerConfig = {
    add_bos_token: Boolean(addBos),
    add_eos_token: Boolean(metadata['tokenizer.ggml.add_eos_token'] ?? false),
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...token }) => [String(id), token])),
    bos_token: bos ?? null,
    eos_token: tokens[eosId],
    pad_token: padId === undefined ? null : tokens[padId],
    unk_token: unkId === undefined ? null : tokens[unkId],
    ...(typeof template === 'string' ? { chat_template: template } : {}),
    clean_up_tokenization_spaces: false,
    model_max_length: Number(metadata[`${String(metadata['general.architecture'])}.context_length`] ?? 4096),
    tokenizer_class: model === 'llama' ? 'LlamaTokenizer' : 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig, bosTokenId: bosId, eosTokenIds, vocabSize };
}
