// Which rules a request runs under: [guardrails] apply for everyone, a plan's list instead, or
// the key's own list instead of that. Each distinct list compiles once (the automaton of a
// 10,000-term list takes a moment) and is reused for every request under it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GuardrailRuleConfig, GuardrailsConfig } from '../config/guardrails-schema.js';
import type { GuardrailProfile } from './guarded-backend.js';
import { compileGuardrails, isEmptyGuardrailSet, type GuardrailRuleSpec } from './guardrail-set.js';
import { PII_DETECTORS, regexDetector } from './detectors.js';

export interface GuardrailPolicy {
  /** The profile for a key (plan and own rule list), or undefined when no rule applies. */
  profileFor(key: { plan: string; guardrails?: readonly string[] } | undefined): GuardrailProfile | undefined;
  /** Changes whenever any rule, term or mask changes: what the audit trail records. */
  readonly fingerprint: string;
  /** Names of the configured rules. */
  readonly ruleNames: readonly string[];
}

export class GuardrailConfigError extends Error {
  override readonly name = 'GuardrailConfigError';
}

/** Terms of a word-list file: one a line, blank lines and `#` comments skipped. */
export function parseWordList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export function loadGuardrailPolicy(config: GuardrailsConfig, readText: (file: string) => string = (file) => readFileSync(file, 'utf8')): GuardrailPolicy {
  const resolved = new Map<string, { rule: GuardrailRuleConfig; terms: string[] }>();
  for (const [name, rule] of Object.entries(config.rules)) {
    let terms = [...(rule.terms ?? [])];
    if (rule.words !== undefined) {
      try {
        terms = terms.concat(parseWordList(readText(rule.words)));
      } catch (error) {
        throw new GuardrailConfigError(`guardrails.rules.${name}.words: cannot read ${rule.words}: ${(error as Error).message}`);
      }
    }
    resolved.set(name, { rule, terms });
  }
  const digest = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');
  const ruleDigests = new Map([...resolved].map(([name, r]) => [name, digest([name, { ...r.rule, words: undefined }, r.terms, config.mask])]));
  const fingerprint = digest([...ruleDigests].sort(([a], [b]) => a.localeCompare(b)));

  const profiles = new Map<string, GuardrailProfile | undefined>();
  const compile = (names: readonly string[]): GuardrailProfile | undefined => {
    const specs = (where: 'input' | 'output'): GuardrailRuleSpec[] =>
      names.flatMap((name): GuardrailRuleSpec[] => {
        const entry = resolved.get(name);
        if (!entry) throw new GuardrailConfigError(`no guardrail rule named "${name}" in [guardrails.rules]`);
        const { rule, terms } = entry;
        if (!rule.on.includes(where)) return [];
        const base = { name, action: rule.action, mask: rule.mask ?? config.mask };
        if (rule.detector) return [{ ...base, detector: PII_DETECTORS[rule.detector] }];
        if (rule.regex) return [{ ...base, detector: regexDetector(rule.regex, rule.max_length) }];
        return [{ ...base, terms, wholeWords: rule.whole_words }];
      });
    const input = compileGuardrails(specs('input'));
    const output = compileGuardrails(specs('output'));
    if (isEmptyGuardrailSet(input) && isEmptyGuardrailSet(output)) return undefined;
    return { id: digest(names.map((n) => ruleDigests.get(n))).slice(0, 16), input, output };
  };
  return {
    fingerprint,
    ruleNames: [...resolved.keys()],
    profileFor(key) {
      const names = key?.guardrails ?? (key && config.plans[key.plan]) ?? config.apply;
      const id = [...new Set(names)].join(',');
      if (!profiles.has(id)) profiles.set(id, compile([...new Set(names)]));
      return profiles.get(id);
    },
  };
}
