import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { encodeYielding, tokenBound, type TokenBound } from './prompt-encoding.js';

export type TokenizerLoadErrorCode = 'tokenizer_missing' | 'tokenizer_invalid';

/** A model package's tokenizer files are absent or unreadable; the message names the file. */
export class TokenizerLoadError extends Error {
  readonly code: TokenizerLoadErrorCode;
  readonly file: string;

  constructor(code: TokenizerLoadErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenizerLoadError';
    this.code = code;
    this.file = file;
  }
}

/** A control token (`<|im_end|>`, `<s>`...): only a chat template may produce one. */
export interface SpecialToken {
  readonly id: number;
  /** Whitespace next to the token is dropped when encoding, as the Hugging Face tokenizers do. */
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface ModelTokenizer {
  /** One past the highest token id (specials included); a model's logits may be wider. */
  readonly vocabSize: number;
  /** Ids that end a turn: tokenizer_config's eos_token, then generation_config's eos_token_id. */
  readonly eosTokenIds: readonly number[];
  readonly bosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  /** Strings handed to chat templates as bos_token / eos_token. */
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  /** tokenizer_config's chat_template (the default one), else chat_template.jinja. */
  readonly chatTemplate: string | undefined;
  readonly specialTokens: ReadonlyMap<string, SpecialToken>;
  /** Plain text to ids: special-token text such as `<|im_end|>` is encoded as ordinary text. */
  encode(text: string): number[];
  /** The same ids as encode, pausing between pieces of a long text so other work can run. */
  encodeYielding(text: string): Promise<number[]>;
  /** Why a text's UTF-8 bytes bound its tokens from below, when that is provable (prompt-encoding.ts). */
  readonly tokenBound: TokenBound | undefined;
  /**
   * encode() plus the ids the tokenizer's post-processor adds around a single text (Llama's BOS;
   * nothing for Qwen): Hugging Face `tokenizer(text)`, for prompts that skip the chat template.
   */
  encodeWithSpecialTokens(text: string): number[];
  /** The ids encodeWithSpecialTokens puts before and after the text. */
  readonly textAffixes: { readonly prefix: readonly number[]; readonly suffix: readonly number[] };
  /**
   * Ids to text, never cleaning up spaces (as the Rust tokenizers and streaming servers do), so
   * streamed and whole decodes agree. Ids outside the vocabulary are dropped.
   */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  isSpecial(id: number): boolean;
}

type Json = Record<string, unknown>;

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
}

const TOKENIZER_FILE = 'tokenizer.json';
const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
const GENERATION_CONFIG_FILE = 'generation_config.json';
const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';
const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** Loads tokenizer.json and tokenizer_config.json (plus the optional files HF exports carry). */
export async function loadTokenizer(dir: string): Promise<ModelTokenizer> {
  const tokenizerJson = await readJsonFile(dir, TOKENIZER_FILE, true);
  const config = await readJsonFile(dir, TOKENIZER_CONFIG_FILE, true);
  const generationConfig = await readJsonFile(dir, GENERATION_CONFIG_FILE, false);
  const specialTokensMap = await readJsonFile(dir, SPECIAL_TOKENS_MAP_FILE, false);
  const templateFile = await readTextFile(dir, CHAT_TEMPLATE_FILE);
  return createModelTokenizer(tokenizerJson!, config!, { generationConfig, specialTokensMap, templateFile });
}

async function readTextFile(dir: string, file: string): Promise<string | undefined> {
  try {
    return await readFile(path.join(dir, file), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenizerLoadError('tokenizer_invalid', file, `cannot read ${file} in ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function readJsonFile(dir: string, file: string, required: boolean): Promise<Json | undefined> {
  const text = await readTextFile(dir, file);
  if (text === undefined) {
    if (!required) return undefined;
    throw new TokenizerLoadError('tokenizer_missing', file, `${file} is missing from ${dir}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerLoadError('tokenizer_invalid', file, `${file} in ${dir} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenizerLoadError('tokenizer_invalid', file, `${file} in ${dir} is not a JSON object`);
  }
  return value as Json;
}

interface OptionalFiles {
  generationConfig?: Json;
  specialTokensMap?: Json;
  templateFile?: string;
}

function createModelTokenizer(tokenizerJson: Json, config: Json, optional: OptionalFiles): ModelTokenizer {
  const invalid = (message: string, cause?: unknown) =>
    new TokenizerLoadError('tokenizer_invalid', TOKENIZER_FILE, `${TOKENIZER_FILE}: ${message}`, { cause });
  const model = tokenizerJson.model as Json | undefined;
  if (typeof model !== 'object' || model === null) throw invalid('has no "model" section');
  const addedTokens = (tokenizerJson.added_tokens ?? []) as AddedTokenJson[];
  if (!Array.isArray(addedTokens) || addedTokens.some((t) => typeof t?.content !== 'string' || !Number.isInteger(t.id))) {
    throw invalid('"added_tokens" must be a list of { id, content }');
  }

  const namedTokens = { ...optional.specialTokensMap, ...config };
  const bosToken = tokenContent(namedTokens.bos_token);
  const eosToken = tokenContent(namedTokens.eos_token);
  const configSpecials = new Set(
    [bosToken, eosToken, tokenContent(namedTokens.pad_token), tokenContent(namedTokens.unk_token)].filter(
      (t): t is string => t !== undefined,
    ),
  );
  for (const t of (namedTokens.additional_special_tokens ?? []) as unknown[]) {
    const content = tokenContent(t);
    if (content !== undefined) configSpecials.add(content);
  }

  const specials = new Map<string, SpecialToken>();
  for (const t of addedTokens) {
    if (t.special || configSpecials.has(t.content)) {
      specials.set(t.content, { id: t.id, lstrip: t.lstrip ?? false, rstrip: t.rstrip ?? false });
    }
  }

  // The wrapped tokenizer never sees the special tokens, so no user text can turn into one.
  let plain: Tokenizer;
  try {
    plain = new Tokenizer({ ...tokenizerJson, added_tokens: addedTokens.filter((t) => !specials.has(t.content)) }, config);
  } catch (error) {
    throw invalid(`not a tokenizer the @huggingface/tokenizers library can load: ${(error as Error).message}`, error);
  }
  // Specials that live in the model vocabulary rather than added_tokens (older exports).
  for (const content of configSpecials) {
    const id = plain.token_to_id(content);
    if (!specials.has(content) && id !== undefined) specials.set(content, { id, lstrip: false, rstrip: false });
  }

  const specialIds = new Set([...specials.values()].map((s) => s.id));
  const specialContentById = new Map([...specials].map(([content, s]) => [s.id, content]));
  const vocabSize = Math.max(modelVocabSize(model), ...addedTokens.map((t) => t.id + 1), ...[...specialIds].map((id) => id + 1));
  const tokenToId = (token: string) => specials.get(token)?.id ?? plain.token_to_id(token);
  const idOf = (token: string | undefined) => (token === undefined ? undefined : tokenToId(token));

  const eosTokenIds: number[] = [];
  for (const id of [idOf(eosToken), ...tokenIdList(optional.generationConfig?.eos_token_id)]) {
    if (id !== undefined && !eosTokenIds.includes(id)) eosTokenIds.push(id);
  }

  const { prefix, suffix } = postProcessorSpecials(tokenizerJson.post_processor, tokenToId);
  const encode = (text: string) => plain.encode(text, { add_special_tokens: false }).ids;

  const decodeRun = (ids: number[]) =>
    ids.length === 0 ? '' : plain.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  const isKnown = (id: number) =>
    Number.isInteger(id) && id >= 0 && id < vocabSize && (specialIds.has(id) || plain.id_to_token(id) !== undefined);

  return {
    vocabSize,
    eosTokenIds,
    bosTokenId: idOf(bosToken),
    padTokenId: idOf(tokenContent(namedTokens.pad_token)),
    bosToken,
    eosToken,
    chatTemplate: chooseChatTemplate(config.chat_template) ?? optional.templateFile,
    specialTokens: specials,
    encode,
    encodeWithSpecialTokens: (text) => [...prefix, ...encode(text), ...suffix],
    textAffixes: { prefix, suffix },
    encodeYielding: (text) => encodeYielding(plain, text),
    tokenBound: tokenBound(tokenizerJson, addedTokens.filter((t) => !specials.has(t.content))),
    decode(ids, options = {}) {
      const known = ids.filter(isKnown);
      if (options.skipSpecialTokens) return decodeRun(known.filter((id) => !specialIds.has(id)));
      let text = '';
      let run: number[] = [];
      for (const id of known) {
        const special = specialContentById.get(id);
        if (special === undefined) {
          run.push(id);
          continue;
        }
        text += decodeRun(run) + special;
        run = [];
      }
      return text + decodeRun(run);
    },
    tokenToId,
    isSpecial: (id) => specialIds.has(id),
  };
}

/**
 * The ids a post-processor puts before and after a single sequence: TemplateProcessing's `single`
 * template (alone or inside a Sequence), or Bert/Roberta processing's cls/sep. Read here because the
 * wrapped tokenizer holds no special tokens to resolve them with.
 */
function postProcessorSpecials(
  processor: unknown,
  tokenToId: (token: string) => number | undefined,
): { prefix: number[]; suffix: number[] } {
  const prefix: number[] = [];
  const suffix: number[] = [];
  const visit = (p: Json | undefined): void => {
    if (!p) return;
    if (p.type === 'Sequence') {
      for (const child of (p.processors ?? []) as Json[]) visit(child);
    } else if (p.type === 'TemplateProcessing') {
      const specials = (p.special_tokens ?? {}) as Record<string, { ids?: number[] }>;
      let seenSequence = false;
      for (const piece of (p.single ?? []) as Json[]) {
        if ('Sequence' in piece) seenSequence = true;
        const name = (piece.SpecialToken as Json | undefined)?.id;
        if (typeof name !== 'string') continue;
        const ids = specials[name]?.ids ?? [tokenToId(name)].filter((id): id is number => id !== undefined);
        (seenSequence ? suffix : prefix).push(...ids);
      }
    } else if (p.type === 'BertProcessing' || p.type === 'RobertaProcessing') {
      const [, cls] = (p.cls ?? []) as [string, number];
      const [, sep] = (p.sep ?? []) as [string, number];
      if (Number.isInteger(cls)) prefix.push(cls);
      if (Number.isInteger(sep)) suffix.push(sep);
    }
  };
  visit(typeof processor === 'object' && processor !== null ? (processor as Json) : undefined);
  return { prefix, suffix };
}

// Config files spell a token as a string or as an AddedToken object { content, ... }.
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return undefined;
}

function tokenIdList(value: unknown): number[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter((id): id is number => Number.isInteger(id));
}

function modelVocabSize(model: Json): number {
  const vocab = model.vocab;
  if (Array.isArray(vocab)) return vocab.length;
  if (typeof vocab !== 'object' || vocab === null) return 0;
  let max = -1;
  for (const id of Object.values(vocab as Record<string, number>)) if (id > max) max = id;
  return max + 1;
}

// A config may hold several named templates; transformers uses the one called "default".
function chooseChatTemplate(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t?.name === 'default') ?? named[0];
    return typeof chosen?.template === 'string' ? chosen.template : undefined;
  }
  return undefined;
}
