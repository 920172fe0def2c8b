import type { ModelTokenizer } from './tokenizer.js';

const REPLACEMENT = '\uFFFD';

// A UTF-8 character spans at most 4 bytes, so a well-formed stream never keeps text pending
// for this many tokens; past it the bytes are garbage and are let out as U+FFFD (the one case
// where the stream may differ from a whole decode: by an extra U+FFFD).
const MAX_PENDING_TOKENS = 16;

export interface StreamingDetokenizerOptions {
  /** Defaults to true: control tokens are not part of the reply text. */
  skipSpecialTokens?: boolean;
}

/**
 * Turns generated token ids into text as they arrive, the way TGI and vLLM do: decode a short
 * window (prefix tokens already shown + new tokens), emit what the new tokens added, and hold it
 * back while it ends in U+FFFD (a character whose bytes are still arriving). Decoding only the
 * window keeps each step O(window), and the prefix keeps decoder context (e.g. word-start spaces).
 */
export class StreamingDetokenizer {
  private readonly tokenizer: ModelTokenizer;
  private readonly skipSpecialTokens: boolean;
  /** Ids from the prefix start on; ids before it were shown and no longer matter. */
  private window: number[] = [];
  /** window[0, readIndex) is the prefix already shown; window[readIndex...] is pending. */
  private readIndex = 0;
  private prefixText = '';

  constructor(tokenizer: ModelTokenizer, options: StreamingDetokenizerOptions = {}) {
    this.tokenizer = tokenizer;
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
  }

  /** Adds one token and returns the text that is safe to show now (often ''). */
  push(tokenId: number): string {
    this.window.push(tokenId);
    const text = this.decodeWindow();
    // Past the bound, let garbage bytes (or a run of skipped specials) out to keep the window short.
    const overdue = this.window.length - this.readIndex >= MAX_PENDING_TOKENS;
    if (text.endsWith(REPLACEMENT) && !overdue) return '';
    const added = newSuffix(this.prefixText, text);
    if (added === '' && !overdue) return '';
    // The pending tokens become the next prefix.
    this.window = this.window.slice(this.readIndex);
    this.readIndex = this.window.length;
    this.prefixText = this.decodeWindow();
    return added;
  }

  /** At the end of generation: whatever is still held back, incomplete characters as U+FFFD. */
  flush(): string {
    const text = this.decodeWindow();
    const emitted = newSuffix(this.prefixText, text);
    this.window = [];
    this.readIndex = 0;
    this.prefixText = '';
    return emitted;
  }

  private decodeWindow(): string {
    return this.tokenizer.decode(this.window, { skipSpecialTokens: this.skipSpecialTokens });
  }
}

/**
 * What `text` adds after `prefix`. Normally prefix is a prefix of text; after garbage bytes were
 * let out it may not be, and then text past the common part is emitted, never half a surrogate pair.
 */
function newSuffix(prefix: string, text: string): string {
  if (text.startsWith(prefix)) return text.slice(prefix.length);
  let common = 0;
  while (common < prefix.length && prefix.charCodeAt(common) === text.charCodeAt(common)) common++;
  if (common > 0 && isHighSurrogate(text.charCodeAt(common - 1))) common--;
  return text.slice(common);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
