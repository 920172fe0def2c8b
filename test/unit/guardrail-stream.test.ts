// Stream-safe guardrails: for any text cut into any chunks, the streamed output is the whole-text
// output, and no masked or blocked term ever reaches the client (fast-check); plus each detector.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileGuardrails,
  emailDetector,
  filterText,
  GuardrailStream,
  ibanDetector,
  ibanValid,
  luhnValid,
  paymentCardDetector,
  phoneDetector,
  regexDetector,
  type GuardrailRuleSpec,
  type GuardrailSet,
} from '../../src/guardrails/index.js';
import { foldText } from '../../src/guardrails/text-folding.js';

/** Cuts `text` at the given fractions, never inside a surrogate pair's check (the stream copes anyway). */
function chunked(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * text.length)))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(text.slice(from, point));
    from = point;
  }
  chunks.push(text.slice(from));
  return chunks;
}

function streamed(set: GuardrailSet, chunks: string[]) {
  const stream = new GuardrailStream(set);
  let text = '';
  for (const chunk of chunks) text += stream.push(chunk);
  text += stream.end();
  return { text, blocked: stream.blocked, hits: stream.hits };
}

// Letters in several widths and cases, digits, separators, CJK, an invisible character and an emoji.
const UNITS = ['a', 'b', 'c', 'A', 'Ｂ', 'ｃ', ' ', '-', '.', '@', '+', '1', '4', '7', '0', 'd', 'e', '中', '文', '\u200B', '😀', 'ß', 's'];
const term = fc.array(fc.constantFrom('a', 'b', 'c', 'd', '中', '文', 's', ' '), { minLength: 1, maxLength: 6 }).map((a) => a.join(''));
// Real PII (and near misses) among the noise, so every detector matches, fails and overlaps often.
const SAMPLES = ['jo@ex.com', 'A.b@c-d.org', 'x@y', '4111 1111 1111 1111', '5555-5555-5555-4444', '4111111111111112', '+1 555 123 4567', '(030) 1234567', 'DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', 'abcd', 'acbd'];
const text = fc
  .array(fc.oneof({ arbitrary: fc.constantFrom(...UNITS), weight: 6 }, { arbitrary: fc.constantFrom(...SAMPLES), weight: 1 }, { arbitrary: term, weight: 1 }), { maxLength: 40 })
  .map((a) => a.join(''));
const action = fc.constantFrom('block' as const, 'mask' as const, 'flag' as const);
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });

const ruleSpecs = fc.record({
  lists: fc.array(fc.record({ terms: fc.array(term, { minLength: 1, maxLength: 6 }), action, wholeWords: fc.boolean() }), { maxLength: 3 }),
  pii: fc.subarray(['email', 'phone', 'card', 'iban', 'regex'] as const),
  piiAction: action,
});

type Action = 'block' | 'mask' | 'flag';

function buildSet(spec: { lists: { terms: string[]; action: Action; wholeWords: boolean }[]; pii: readonly string[]; piiAction: Action }): GuardrailSet {
  const rules: GuardrailRuleSpec[] = spec.lists.map((list, i) => ({ name: `list${i}`, mask: '#', ...list }));
  const detectors = { email: emailDetector, phone: phoneDetector, card: paymentCardDetector, iban: ibanDetector, regex: regexDetector('a[bc]+d', 8) };
  for (const kind of spec.pii) rules.push({ name: kind, action: spec.piiAction, mask: '#', detector: detectors[kind as keyof typeof detectors] });
  return compileGuardrails(rules);
}

describe('GuardrailStream', () => {
  it('gives the same output, verdict and hits for any chunking of any text as for the whole text', () => {
    fc.assert(
      fc.property(ruleSpecs, text, cuts, (spec, input, cutAt) => {
        const set = buildSet(spec);
        expect(streamed(set, chunked(input, cutAt))).toEqual(filterText(set, input));
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same output for long texts too (the stream trims what it no longer needs)', () => {
    const long = fc.array(text, { minLength: 10, maxLength: 40 }).map((parts) => parts.join(' '));
    fc.assert(
      fc.property(ruleSpecs, long, cuts, (spec, input, cutAt) => {
        const set = buildSet(spec);
        expect(streamed(set, chunked(input, cutAt))).toEqual(filterText(set, input));
      }),
      { numRuns: 300 },
    );
  });

  it('never lets a masked or blocked term reach the client, whatever the chunking', () => {
    const lists = fc.array(fc.record({ terms: fc.array(term, { minLength: 1, maxLength: 6 }), action: fc.constantFrom('block' as const, 'mask' as const) }), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(lists, text, cuts, (specLists, input, cutAt) => {
        const set = buildSet({ lists: specLists.map((l) => ({ ...l, wholeWords: false })), pii: [], piiAction: 'flag' });
        const out = foldText(streamed(set, chunked(input, cutAt)).text);
        for (const list of specLists) for (const t of list.terms) if (foldText(t.trim()) !== '') expect(out).not.toContain(foldText(t.trim()));
      }),
      { numRuns: 3000 },
    );
  });

  it('holds back only what could still become a match, and nothing when no rule could', () => {
    const set = compileGuardrails([{ name: 'w', action: 'mask', mask: '***', terms: ['secret plan'] }]);
    const stream = new GuardrailStream(set);
    expect(stream.push('the sec')).toBe('the ');
    expect(stream.push('ret')).toBe('');
    expect(stream.push(' pl')).toBe('');
    expect(stream.push('an is out')).toBe('*** is out');
    expect(stream.push('. ok')).toBe('. ok');
    expect(stream.end()).toBe('');
  });

  it('masks whole words only, finds terms in CJK text without spaces, and sees through width, case and invisible characters', () => {
    const set = compileGuardrails([
      { name: 'words', action: 'mask', mask: '[x]', terms: ['ass', '机密', 'secret'] },
    ]);
    expect(filterText(set, 'a class act, ass!').text).toBe('a class act, [x]!');
    expect(filterText(set, '这是机密文件').text).toBe('这是[x]文件');
    expect(filterText(set, 'ＳＥＣＲＥＴ and Sec\u200Bret').text).toBe('[x] and [x]');
  });

  it('stops at a blocked term and reports which rules matched', () => {
    const set = compileGuardrails([
      { name: 'flagged', action: 'flag', mask: '', terms: ['hello'] },
      { name: 'banned', action: 'block', mask: '', terms: ['forbidden'] },
    ]);
    const stream = new GuardrailStream(set);
    expect(stream.push('hello there, the forbid')).toBe('hello there, the ');
    expect(stream.push('den word and more')).toBe('');
    expect(stream.blocked).toBe(true);
    expect(stream.hits).toEqual([
      { rule: 'flagged', action: 'flag' },
      { rule: 'banned', action: 'block' },
    ]);
  });
});

describe('PII detectors', () => {
  const pii = compileGuardrails([
    { name: 'email', action: 'mask', mask: '<email>', detector: emailDetector },
    { name: 'card', action: 'mask', mask: '<card>', detector: paymentCardDetector },
    { name: 'iban', action: 'mask', mask: '<iban>', detector: ibanDetector },
    { name: 'phone', action: 'mask', mask: '<phone>', detector: phoneDetector },
  ]);

  it('masks e-mail addresses, Luhn-valid cards, mod-97-valid IBANs and phone numbers', () => {
    expect(filterText(pii, 'mail Jane.Doe+x@Example.co.uk now').text).toBe('mail <email> now');
    expect(filterText(pii, 'card 4111 1111 1111 1111, thanks').text).toBe('card <card>, thanks');
    expect(filterText(pii, 'card ４１１１-１１１１-１１１１-１１１１.').text).toBe('card <card>.');
    expect(filterText(pii, 'iban DE89 3704 0044 0532 0130 00 ok').text).toBe('iban <iban> ok');
    expect(filterText(pii, 'iban GB82WEST12345698765432.').text).toBe('iban <iban>.');
    expect(filterText(pii, 'call +1 (555) 123-4567 today').text).toBe('call <phone> today');
  });

  it('leaves numbers that fail their checksum or are too short alone', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(ibanValid('de89370400440532013000')).toBe(true);
    expect(ibanValid('de89370400440532013001')).toBe(false);
    const cardsOnly = compileGuardrails([{ name: 'card', action: 'mask', mask: '<card>', detector: paymentCardDetector }]);
    expect(filterText(cardsOnly, 'order 4111 1111 1111 1112 and 12345').text).toBe('order 4111 1111 1111 1112 and 12345');
    expect(filterText(pii, 'not an address: a@b, version 1.2.3').text).toBe('not an address: a@b, version 1.2.3');
  });

  it('catches an e-mail address and a card number split across many chunks', () => {
    const stream = new GuardrailStream(pii);
    let out = '';
    for (const chunk of ['write to jo', 'hn@exa', 'mple.org or pay with 5555 55', '55 5555 4444', ' please']) out += stream.push(chunk);
    out += stream.end();
    expect(out).toBe('write to <email> or pay with <card> please');
  });
});
