// What guardrails did to one request, as its log line and audit record show it: the strongest
// action on the prompt and on the output, and the rules that matched.
import type { GuardrailObserver } from './guarded-backend.js';
import type { GuardrailAction } from './guardrail-set.js';

export interface GuardrailOutcome {
  input: GuardrailAction | 'pass';
  output: GuardrailAction | 'pass';
  rules: string[];
}

const STRENGTH = { pass: 0, flag: 1, mask: 2, block: 3 } as const;

/** An observer that keeps the outcome up to date through `update` (e.g. the request log's set). */
export function guardrailOutcome(update: (outcome: GuardrailOutcome) => void, onInput?: GuardrailObserver['onInput']): GuardrailObserver {
  const outcome: GuardrailOutcome = { input: 'pass', output: 'pass', rules: [] };
  return {
    onInput,
    onHits(where, hits) {
      for (const hit of hits) {
        if (STRENGTH[hit.action] > STRENGTH[outcome[where]]) outcome[where] = hit.action;
        if (!outcome.rules.includes(hit.rule)) outcome.rules.push(hit.rule);
      }
      update({ ...outcome, rules: [...outcome.rules] });
    },
  };
}
