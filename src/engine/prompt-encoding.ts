// Long prompts without stalling the process: a byte bound that refuses what can't fit before any
// tokenizing, and an encoder that yields to the event loop between pieces of a long text.
import type { Tokenizer } from '@huggingface/tokenizers';

type Json = Record<string, unknown>;

/*
 * Why a byte count bounds the token count from below, exactly:
 * - Byte-level BPE (GPT-2, Llama 3, Qwen): the text's UTF-8 bytes are mapped one byte to one
 *   character and every token is a run of those characters, so each token covers at most
 *   `longest` bytes of the input (`longest` = the longest vocabulary entry, in characters).
 * - SentencePiece-style BPE with byte fallback (Llama 2, Mistral): every token is a vocabulary
 *   piece (its UTF-8 bytes, with the ▁ space marker counting as the one byte of a space) or a
 *   <0xNN> byte token covering one byte.
 * Either way a text of B bytes needs at least ceil(B / longest) tokens: if that many can't fit
 * the context, tokenizing can only confirm it. The other direction (tokens ≤ B plus a marker or
 * prefix space per piece) is no use for refusing. Normalizers that may shrink the text (NFKC,
 * lowercasing, arbitrary replacements) make the bound unsound, so it is only used for the
 * normalizers listed below; with any other tokenizer there is no early refusal.
 */

/** What makes a prompt's byte count a lower bound on its tokens (see above). */
export interface TokenBound {
  /** The most input bytes one token can cover. */
  readonly longest: number;
  /** Bytes are counted after this normalization (the tokenizer composes characters first). */
  readonly countForm?: 'NFC';
}

/** The bound for a tokenizer.json, when it is provable; undefined when it is not. */
export function tokenBound(tokenizerJson: Json, addedTokens: readonly { content: string }[]): TokenBound | undefined {
  const model = tokenizerJson.model as Json | undefined;
  if (model?.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null) return undefined;
  const normalization = normalizerEffect(tokenizerJson.normalizer);
  if (normalization === 'shrinks') return undefined;
  const vocab = Object.keys(model.vocab as Json);
  let span: (token: string) => number;
  if (usesByteLevel(tokenizerJson.pre_tokenizer) || usesByteLevel(tokenizerJson.decoder)) {
    span = (token) => token.length;
  } else if (model.byte_fallback === true && hasEveryByteToken(vocab)) {
    span = (token) => (/^<0x[0-9A-F]{2}>$/.test(token) ? 1 : Buffer.byteLength(token.replaceAll('\u2581', ' ')));
  } else {
    return undefined;
  }
  let longest = 1;
  for (const token of vocab) longest = Math.max(longest, span(token));
  // Added (non-special) tokens are matched as whole strings of the input.
  for (const token of addedTokens) longest = Math.max(longest, Buffer.byteLength(token.content));
  return normalization === 'composes' ? { longest, countForm: 'NFC' } : { longest };
}

/** The fewest tokens `text` can encode to (0 when there is no bound). */
export function minimumTokens(text: string, bound: TokenBound | undefined): number {
  if (bound === undefined || text.length === 0) return 0;
  const counted = bound.countForm ? text.normalize(bound.countForm) : text;
  return Math.ceil(Buffer.byteLength(counted) / bound.longest);
}

function usesByteLevel(component: unknown): boolean {
  const c = component as Json | null | undefined;
  if (!c) return false;
  if (c.type === 'ByteLevel') return true;
  const parts = (c.pretokenizers ?? c.decoders) as unknown[] | undefined;
  return c.type === 'Sequence' && Array.isArray(parts) && parts.some(usesByteLevel);
}

/**
 * How a normalizer changes the bytes tokens must cover: never fewer ('keeps': NFD only
 * decomposes, Prepend adds, ▁ for a space counts as the space's one byte), fewer only by
 * canonical composition ('composes': NFC, counted after NFC), or possibly fewer ('shrinks':
 * NFKC folds, lowercasing, arbitrary replacements, anything not known here).
 */
function normalizerEffect(normalizer: unknown): 'keeps' | 'composes' | 'shrinks' {
  const n = normalizer as Json | null | undefined;
  if (n === null || n === undefined) return 'keeps';
  switch (n.type) {
    case 'NFD':
    case 'Prepend':
      return 'keeps';
    case 'NFC':
      return 'composes';
    case 'Replace':
      return (n.pattern as Json | undefined)?.String === ' ' && n.content === '\u2581' ? 'keeps' : 'shrinks';
    case 'Sequence': {
      if (!Array.isArray(n.normalizers)) return 'shrinks';
      const effects = n.normalizers.map(normalizerEffect);
      if (effects.includes('shrinks')) return 'shrinks';
      // NFC after an NFD is still only composition; anything else is not known to be safe.
      return effects.includes('composes') ? 'composes' : 'keeps';
    }
    default:
      return 'shrinks';
  }
}

function hasEveryByteToken(vocab: readonly string[]): boolean {
  const present = new Set(vocab);
  for (let b = 0; b < 256; b++) if (!present.has(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)) return false;
  return true;
}

/** Texts shorter than this are encoded in one go: too short to hold anyone up. */
const YIELD_ABOVE_CHARS = 16 * 1024;
/** How long the encoder runs before it lets other requests' work run. */
const SLICE_MS = 5;
const PRE_TOKENS_PER_BATCH = 256;

/**
 * The pieces of @huggingface/tokenizers' pipeline this encoder runs itself (normalize,
 * pre-tokenize, model), so it can pause between pre-tokens. They are not in the published
 * types; when a tokenizer lacks any of them, or uses a feature this path does not replay, the
 * library's own encode runs instead. A test checks both paths give the same ids.
 */
interface TokenizerPipeline {
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: ((text: string, options: { section_index: number }) => string[]) | null;
  model: ((preTokens: string[]) => string[]) & { tokens_to_ids: Map<string, number>; unk_token_id?: number; fuse_unk?: boolean };
  added_tokens: unknown[];
  remove_space?: boolean;
  do_lowercase_and_remove_accent?: boolean;
}

function pipelineOf(tokenizer: Tokenizer): TokenizerPipeline | undefined {
  const t = tokenizer as unknown as Partial<TokenizerPipeline>;
  const replayable =
    typeof t.model === 'function' &&
    t.model.tokens_to_ids instanceof Map &&
    !t.model.fuse_unk &&
    Array.isArray(t.added_tokens) &&
    t.added_tokens.length === 0 &&
    !t.remove_space &&
    !t.do_lowercase_and_remove_accent &&
    (t.normalizer === null || typeof t.normalizer === 'function') &&
    (t.pre_tokenizer === null || typeof t.pre_tokenizer === 'function');
  return replayable ? (t as TokenizerPipeline) : undefined;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Plain text to ids, as `tokenizer.encode(text, { add_special_tokens: false })` gives them, but
 * pausing every few milliseconds between pre-tokens so a long prompt never holds up other
 * requests (health checks, short chats) for long. One very long pre-token (a megabyte without a
 * space) is still one piece of work: the byte bound refuses those that can't fit first.
 */
export async function encodeYielding(tokenizer: Tokenizer, text: string): Promise<number[]> {
  const pipeline = text.length > YIELD_ABOVE_CHARS ? pipelineOf(tokenizer) : undefined;
  if (!pipeline) return tokenizer.encode(text, { add_special_tokens: false }).ids;
  let sliceStart = performance.now();
  const pause = async () => {
    if (performance.now() - sliceStart < SLICE_MS) return;
    await yieldToEventLoop();
    sliceStart = performance.now();
  };
  const normalized = pipeline.normalizer ? pipeline.normalizer(text) : text;
  if (normalized.length === 0) return [];
  await pause();
  const preTokens = pipeline.pre_tokenizer ? pipeline.pre_tokenizer(normalized, { section_index: 0 }) : [normalized];
  const ids: number[] = [];
  const { tokens_to_ids: vocab, unk_token_id: unk } = pipeline.model;
  for (let start = 0; start < preTokens.length; start += PRE_TOKENS_PER_BATCH) {
    await pause();
    for (const token of pipeline.model(preTokens.slice(start, start + PRE_TOKENS_PER_BATCH))) {
      const id = vocab.get(token) ?? unk;
      if (id !== undefined) ids.push(id);
    }
  }
  return ids;
}
