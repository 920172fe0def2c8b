// A compiled set of guardrail rules: every word list's terms in one Aho–Corasick automaton,
// plus the pattern detectors, each tied to its rule's action.
import { AhoCorasick } from './aho-corasick.js';
import type { Detector } from './detectors.js';
import { foldText, isWordChar } from './text-folding.js';

export type GuardrailAction = 'block' | 'mask' | 'flag';

export interface GuardrailRule {
  readonly name: string;
  readonly action: GuardrailAction;
  /** What replaces a masked span. */
  readonly mask: string;
}

/** One rule as configured: a word list (terms) or a detector. */
export interface GuardrailRuleSpec extends GuardrailRule {
  terms?: readonly string[];
  /** Word-list terms match whole words only (default), except in scripts without spaces. */
  wholeWords?: boolean;
  detector?: Detector;
}

export interface GuardrailSet {
  readonly rules: readonly GuardrailRule[];
  readonly automaton: AhoCorasick | undefined;
  /** Per automaton pattern: its rule, and whether each end needs a word boundary. */
  readonly patterns: readonly { rule: number; boundaryBefore: boolean; boundaryAfter: boolean }[];
  readonly detectors: readonly { rule: number; detector: Detector }[];
  /** The most characters any rule can match: the bound on what a stream ever holds back. */
  readonly maxHoldBack: number;
}

export function compileGuardrails(specs: readonly GuardrailRuleSpec[]): GuardrailSet {
  const rules: GuardrailRule[] = [];
  const folded: string[] = [];
  const patterns: GuardrailSet['patterns'][number][] = [];
  const detectors: { rule: number; detector: Detector }[] = [];
  for (const spec of specs) {
    const rule = rules.push({ name: spec.name, action: spec.action, mask: spec.mask }) - 1;
    if (spec.detector) detectors.push({ rule, detector: spec.detector });
    for (const term of spec.terms ?? []) {
      const f = foldText(term.trim());
      if (f === '') continue;
      const whole = spec.wholeWords ?? true;
      folded.push(f);
      patterns.push({ rule, boundaryBefore: whole && isWordChar(f[0]), boundaryAfter: whole && isWordChar(f.at(-1)) });
    }
  }
  const automaton = folded.length > 0 ? new AhoCorasick(folded) : undefined;
  const maxHoldBack = Math.max(automaton?.longestPattern ?? 0, ...detectors.map((d) => d.detector.maxLength));
  return { rules, automaton, patterns, detectors, maxHoldBack };
}

export function isEmptyGuardrailSet(set: GuardrailSet): boolean {
  return set.automaton === undefined && set.detectors.length === 0;
}
