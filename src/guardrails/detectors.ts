// Pattern detectors on folded text (lower case, NFKD): e-mail addresses, phone numbers, payment
// cards (Luhn), IBANs (mod-97) and operator regexes. Each has a bounded maximum match length and
// says how much of the text's end could still begin a match; that is all a stream ever holds back.
//
// The rule that makes streaming exact: `matchAt` reads the text from `at` only as far as a match
// could still be growing (plus one character to see where it stops), never past `limit`, and
// `pending` covers every tail it could still be growing into. So a position decided with part of
// the text decides exactly as it would with all of it.

export interface Detector {
  /** Longest match, in folded characters (a regex rule's `max_length`). */
  readonly maxLength: number;
  /** Length of the match starting at `at` in `text`, or 0. Reads text[at − CONTEXT … limit). */
  matchAt(text: string, at: number, limit: number): number;
  /** How many characters at the end of `text` could still begin a match once more text comes. */
  pending(text: string): number;
}

/** Characters before a position that detectors may look at (regex lookbehind, word starts). */
export const CONTEXT = 16;

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isLower = (c: string | undefined) => c !== undefined && c >= 'a' && c <= 'z';
const isAlnum = (c: string | undefined) => isDigit(c) || isLower(c);

/** Length of the run at the end of `text` of characters `inRun` accepts, up to `max`. */
function tailRun(text: string, inRun: (c: string) => boolean, max: number): number {
  let n = 0;
  while (n < max && n < text.length && inRun(text[text.length - 1 - n]!)) n++;
  return n;
}

/** Like tailRun, but only counted from the earliest position in the run where `canStart` holds. */
function tailFrom(text: string, inRun: (c: string) => boolean, max: number, canStart: (text: string, at: number) => boolean): number {
  const run = tailRun(text, inRun, max);
  for (let at = text.length - run; at < text.length; at++) if (canStart(text, at)) return text.length - at;
  return 0;
}

const EMAIL_CHARS = /[a-z0-9._%+@-]/;
const EMAIL = /[a-z0-9._%+-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}(?![a-z0-9_-])/y;

/** name@example.com: up to 254 characters, the RFC 5321 limit. Holds back the word being written. */
export const emailDetector: Detector = {
  maxLength: 254,
  matchAt(text, at, limit) {
    if (at > 0 && EMAIL_CHARS.test(text[at - 1]!)) return 0;
    if (!/[a-z0-9._%+-]/.test(text[at]!)) return 0;
    return stickyMatch(EMAIL, text, at, limit);
  },
  pending: (text) => tailRun(text, (c) => EMAIL_CHARS.test(c), 254),
};

const PHONE = /\+?\d(?:[ .()-]{0,2}\d){6,14}(?!\d)/y;
const PHONE_CHARS = (c: string) => isDigit(c) || c === '+' || c === ' ' || c === '.' || c === '(' || c === ')' || c === '-';

/** 7 to 15 digits, optionally with a leading + and separators ( ) . - or spaces between them. */
export const phoneDetector: Detector = {
  maxLength: 44,
  matchAt(text, at, limit) {
    const c = text[at];
    if (!(isDigit(c) || c === '+') || isDigit(text[at - 1]) || text[at - 1] === '+') return 0;
    return stickyMatch(PHONE, text, at, limit);
  },
  pending: (text) => tailFrom(text, PHONE_CHARS, 44, (t, i) => isDigit(t[i]) || t[i] === '+'),
};

/**
 * Digits from `at`, single separators allowed between them, up to `maxDigits`: the end offset
 * after each digit, and the digits. Reads one character past the last digit or separator.
 */
function digitRun(text: string, at: number, limit: number, maxDigits: number, isSeparator: (c: string | undefined) => boolean) {
  const ends: number[] = [];
  let digits = '';
  let i = at;
  while (i < limit && digits.length < maxDigits) {
    if (isDigit(text[i])) {
      digits += text[i];
      ends.push(++i);
    } else if (digits.length > 0 && isSeparator(text[i]) && i + 1 < limit && isDigit(text[i + 1])) i++;
    else break;
  }
  return { ends, digits };
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

const CARD_SEPARATOR = (c: string | undefined) => c === ' ' || c === '-';

/** 13 to 19 digits passing the Luhn check, optionally grouped by spaces or dashes. */
export const paymentCardDetector: Detector = {
  maxLength: 37,
  matchAt(text, at, limit) {
    if (!isDigit(text[at]) || isDigit(text[at - 1])) return 0;
    const { ends, digits } = digitRun(text, at, limit, 19, CARD_SEPARATOR);
    for (let n = digits.length; n >= 13; n--) {
      if (!isDigit(text[ends[n - 1]!]) && luhnValid(digits.slice(0, n))) return ends[n - 1]! - at;
    }
    return 0;
  },
  pending: (text) => tailFrom(text, (c) => isDigit(c) || CARD_SEPARATOR(c), 37, (t, i) => isDigit(t[i]) && !isDigit(t[i - 1])),
};

/** ISO 13616 check: the first four characters moved to the end, letters as 10–35, mod 97 is 1. */
export function ibanValid(compact: string): boolean {
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const c of rearranged) {
    const value = isDigit(c) ? c.charCodeAt(0) - 48 : c.charCodeAt(0) - 87;
    remainder = (remainder * (value > 9 ? 100 : 10) + value) % 97;
  }
  return remainder === 1;
}

const IBAN_MAX_CHARS = 34;

/** Country code, two check digits and 11 to 30 letters or digits, optionally in groups with spaces. */
export const ibanDetector: Detector = {
  maxLength: 42,
  matchAt(text, at, limit) {
    if (!isLower(text[at]) || isAlnum(text[at - 1])) return 0;
    if (!(isLower(text[at + 1]) && isDigit(text[at + 2]) && isDigit(text[at + 3])) || at + 4 > limit) return 0;
    const ends: number[] = [];
    let compact = '';
    let i = at;
    while (i < limit && compact.length < IBAN_MAX_CHARS) {
      if (isAlnum(text[i])) {
        compact += text[i];
        ends.push(++i);
      } else if (compact.length >= 4 && text[i] === ' ' && i + 1 < limit && isAlnum(text[i + 1])) i++;
      else break;
    }
    for (let n = compact.length; n >= 15; n--) {
      if (!isAlnum(text[ends[n - 1]!]) && ibanValid(compact.slice(0, n))) return ends[n - 1]! - at;
    }
    return 0;
  },
  pending: (text) =>
    tailFrom(text, (c) => isAlnum(c) || c === ' ', 42, (t, i) => {
      if (!isLower(t[i]) || isAlnum(t[i - 1])) return false;
      // Whatever of "letter letter digit digit" has arrived must fit.
      const shape = [isLower, isLower, isDigit, isDigit];
      for (let k = 1; k < 4 && i + k < t.length; k++) if (!shape[k]!(t[i + k])) return false;
      return true;
    }),
};

/**
 * An operator's regular expression, matched on folded text (lower case: write patterns in lower
 * case). It sees at most `maxLength` characters from where a match starts and CONTEXT before.
 */
export function regexDetector(pattern: string, maxLength: number): Detector {
  const regex = new RegExp(pattern, 'yu');
  return {
    maxLength,
    matchAt(text, at, limit) {
      const from = Math.max(0, at - CONTEXT);
      const window = text.slice(from, Math.min(limit, at + maxLength));
      regex.lastIndex = at - from;
      return regex.exec(window)?.[0].length ?? 0;
    },
    // Anything could still be growing into a match: hold back its whole reach.
    pending: (text) => Math.min(maxLength, text.length),
  };
}

/** These patterns have no lookbehind: the window starts where the match would. */
function stickyMatch(regex: RegExp, text: string, at: number, limit: number): number {
  regex.lastIndex = 0;
  return regex.exec(text.slice(at, limit))?.[0].length ?? 0;
}

export const PII_DETECTORS = {
  email: emailDetector,
  phone: phoneDetector,
  payment_card: paymentCardDetector,
  iban: ibanDetector,
} as const;

export type PiiKind = keyof typeof PII_DETECTORS;
