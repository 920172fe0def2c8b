// The two tokenizer kinds GGUF files carry, as `tokenizer.ggml.*` metadata, for the GGUF writer:
// `gpt2` (byte-level BPE with merges, the builder's own tokenizer) and `llama` (SentencePiece pieces
// with scores and <0xXX> byte fallback, derived from the same learned pieces).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHATML_TEMPLATE, ENDOFTEXT, IM_END, writeTokenizerFiles } from './tokenizer-writer.js';

/** llama.cpp's token types (llama_token_type). */
export const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface GgufVocab {
  model: 'gpt2' | 'llama';
  /** tokenizer.ggml.pre for gpt2: qwen2, llama-bpe or gpt-2. */
  pre?: string;
  tokens: string[];
  tokenTypes: number[];
  scores?: number[];
  merges?: string[];
  bosTokenId: number;
  eosTokenId: number;
  padTokenId?: number;
  unknownTokenId?: number;
  addBos: boolean;
  chatTemplate: string;
}

// Mistral-style template; SentencePiece models put BOS into the prompt through the template.
export const INST_TEMPLATE =
  '{{- bos_token }}{%- for message in messages %}' +
  "{%- if message['role'] == 'assistant' %}{{- message['content'] + eos_token }}" +
  "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}{%- endfor %}";

// A few CJK pieces so merges over multi-byte characters are exercised; other characters fall back to bytes.
const CJK_PIECES = ['你', '好', '世', '界', '你好', '世界', '中', '文', '中文'];

/** The builder's byte-level BPE (the tokenizer of its ONNX packages) as GGUF `gpt2` metadata. */
export async function byteLevelVocab(vocabSize: number, pre = 'qwen2'): Promise<GgufVocab> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aigw-vocab-'));
  try {
    await writeTokenizerFiles(dir, { vocabSize });
    const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
    const tokens: string[] = new Array(vocabSize);
    const tokenTypes: number[] = new Array(vocabSize).fill(TokenType.normal);
    for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) tokens[id] = token;
    for (const added of json.added_tokens as { id: number; content: string }[]) {
      tokens[added.id] = added.content;
      tokenTypes[added.id] = TokenType.control;
    }
    const merges = (json.model.merges as [string, string][]).map(([a, b]) => `${a} ${b}`);
    const endOfText = tokens.indexOf(ENDOFTEXT);
    return {
      model: 'gpt2',
      pre,
      tokens,
      tokenTypes,
      merges,
      // As Qwen2's GGUF files: BOS is <|endoftext|> but never added; a turn ends at <|im_end|>.
      bosTokenId: endOfText,
      eosTokenId: tokens.indexOf(IM_END),
      padTokenId: endOfText,
      addBos: false,
      chatTemplate: CHATML_TEMPLATE,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const BYTE_LEVEL_CHARS = (() => {
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
  }
  return map;
})();

function byteLevelToText(token: string): string | undefined {
  const bytes = Uint8Array.from([...token], (ch) => BYTE_LEVEL_CHARS.get(ch) ?? 0);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A SentencePiece-style vocabulary of `vocabSize` ids: <unk> <s> </s>, the 256 byte tokens, the
 * single characters, then the learned pieces (spaces as ▁) scored by learning order, so every
 * piece is the merge of two pieces scored higher, as SentencePiece BPE models are.
 */
export async function sentencePieceVocab(vocabSize: number): Promise<GgufVocab> {
  const learned = await byteLevelVocab(vocabSize);
  const tokens = ['<unk>', '<s>', '</s>'];
  const tokenTypes: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    tokenTypes.push(TokenType.byte);
  }
  const seen = new Set(tokens);
  const pieces: string[] = [];
  const addPiece = (piece: string) => {
    if (!seen.has(piece)) {
      seen.add(piece);
      pieces.push(piece);
    }
  };
  const texts = learned.tokens
    .filter((_, id) => learned.tokenTypes[id] === TokenType.normal)
    .map((t) => byteLevelToText(t)?.replaceAll(' ', '▁'))
    .filter((t): t is string => t !== undefined && t.length > 0 && !/[\s\p{C}]/u.test(t));
  // Characters first (each text's own characters), then the longer pieces in learning order.
  for (const text of [...texts, ...CJK_PIECES]) for (const ch of text) addPiece(ch);
  for (const text of [...texts, ...CJK_PIECES]) if ([...text].length > 1 && isMergeOfKnown(text, seen)) addPiece(text);
  const room = vocabSize - tokens.length;
  if (room < 0) throw new RangeError(`vocabSize ${vocabSize} is too small for a SentencePiece vocabulary`);
  const scores: number[] = tokens.map(() => 0);
  for (const piece of pieces.slice(0, room)) {
    scores.push(-tokens.length);
    tokens.push(piece);
    tokenTypes.push(TokenType.normal);
  }
  while (tokens.length < vocabSize) {
    scores.push(-tokens.length);
    tokens.push(`<unused${tokens.length}>`);
    tokenTypes.push(TokenType.unused);
  }
  return {
    model: 'llama',
    tokens,
    tokenTypes,
    scores,
    bosTokenId: 1,
    eosTokenId: 2,
    unknownTokenId: 0,
    addBos: true,
    chatTemplate: INST_TEMPLATE,
  };
}

// A piece is only reachable by SentencePiece's pairwise merges if some split of it is two known pieces.
function isMergeOfKnown(text: string, known: Set<string>): boolean {
  const chars = [...text];
  for (let i = 1; i < chars.length; i++) {
    if (known.has(chars.slice(0, i).join('')) && known.has(chars.slice(i).join(''))) return true;
  }
  return false;
}
