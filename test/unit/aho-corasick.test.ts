// Aho–Corasick against the obvious quadratic search, on random term lists and texts (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AhoCorasick } from '../../src/guardrails/aho-corasick.js';
import { foldText, isWordChar } from '../../src/guardrails/text-folding.js';

function naive(patterns: string[], text: string) {
  const found: { pattern: number; start: number; end: number }[] = [];
  for (let end = 1; end <= text.length; end++) {
    patterns.forEach((p, pattern) => {
      if (p.length > 0 && end >= p.length && text.slice(end - p.length, end) === p) found.push({ pattern, start: end - p.length, end });
    });
  }
  return found;
}

const sortMatches = (m: { pattern: number; start: number; end: number }[]) =>
  [...m].sort((a, b) => a.end - b.end || a.pattern - b.pattern || a.start - b.start);

describe('AhoCorasick', () => {
  it('finds exactly the matches a naive search finds (small alphabet, overlapping terms)', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c'), minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 12 }), fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd'), maxLength: 60 }), (patterns, text) => {
        const ac = new AhoCorasick(patterns);
        expect(sortMatches(ac.findAll(text))).toEqual(sortMatches(naive(patterns, text)));
      }),
      { numRuns: 500 },
    );
  });

  it('finds CJK terms inside text without spaces, and reports how much of the tail could still match', () => {
    const ac = new AhoCorasick(['机密', '社外秘', 'ひみつ']);
    expect(ac.findAll('这是机密文件，社外秘です、ひみつ')).toEqual([
      { pattern: 0, start: 2, end: 4 },
      { pattern: 1, start: 7, end: 10 },
      { pattern: 2, start: 13, end: 16 },
    ]);
    let state = 0;
    for (const ch of '文件社外') state = ac.step(state, ch.charCodeAt(0));
    expect(ac.pendingLength(state)).toBe(2);
  });
});

describe('text folding', () => {
  it('folds full-width, half-width, ligatures, case and accents to one form', () => {
    expect(foldText('ＳＥＣＲＥＴ')).toBe('secret');
    expect(foldText('ｼｰｸﾚｯﾄ')).toBe(foldText('シークレット'));
    expect(foldText('ﬁle')).toBe('file');
    expect(foldText('STRAßE')).toBe(foldText('strasse'));
    expect(foldText('café')).toBe(foldText('cafe\u0301'));
    expect(foldText('b\u200Bad')).toBe('bad');
  });

  it('treats CJK as having no word boundaries and Latin, Cyrillic or digits as word characters', () => {
    expect(isWordChar('a')).toBe(true);
    expect(isWordChar('ж')).toBe(true);
    expect(isWordChar('7')).toBe(true);
    expect(isWordChar('中')).toBe(false);
    expect(isWordChar('ア')).toBe(false);
    expect(isWordChar(' ')).toBe(false);
  });
});
