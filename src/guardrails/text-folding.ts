// Folding text for matching: compatibility decomposition (NFKD, so NFKC-equal text folds equal:
// full-width and half-width forms, ligatures, precomposed or combining accents), full case folding,
// and invisible format characters dropped. Done per code point, so the folded form of a prefix is
// a prefix of the folded whole: what streaming needs, and what maps a match back to the original.

const cache = new Map<string, string>();
const IGNORABLE = /^\p{Default_Ignorable_Code_Point}$/u;

/** The folded form of one code point (possibly empty, possibly several characters). */
export function foldCodePoint(cp: string): string {
  if (cp.length === 1) {
    const code = cp.charCodeAt(0);
    if (code < 0x80) return code >= 0x41 && code <= 0x5a ? String.fromCharCode(code + 32) : cp;
  }
  let folded = cache.get(cp);
  if (folded === undefined) {
    // Upper then lower case is full case folding for what matters here (ß → ss, ς → σ).
    folded = IGNORABLE.test(cp) ? '' : cp.normalize('NFKD').toUpperCase().toLowerCase().normalize('NFKD');
    if (cache.size < 65_536) cache.set(cp, folded);
  }
  return folded;
}

/** Folds a whole string (for terms and tests); streaming text goes through FoldedBuffer. */
export function foldText(text: string): string {
  let out = '';
  for (const cp of text) out += foldCodePoint(cp);
  return out;
}

// Scripts written without spaces between words: a term in them matches anywhere.
const UNSPACED = /[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}\p{sc=Thai}\p{sc=Lao}\p{sc=Khmer}\p{sc=Myanmar}\p{sc=Tibetan}]/u;
const WORDLIKE = /[\p{L}\p{N}\p{M}_]/u;
const wordCache = new Map<number, boolean>();

/** A character of a word in a script with spaces: a whole-word term must not touch one. */
export function isWordChar(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  const code = ch.charCodeAt(0);
  if (code < 0x80) return (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x5f || (code >= 0x41 && code <= 0x5a);
  let word = wordCache.get(code);
  if (word === undefined) {
    word = WORDLIKE.test(ch) && !UNSPACED.test(ch);
    wordCache.set(code, word);
  }
  return word;
}
