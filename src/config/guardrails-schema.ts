// The [guardrails] and [audit] sections of aigw.toml: rules (word lists, regexes, PII detectors)
// with their actions, which rules apply to whom, and how long audit records are kept.
import { z } from 'zod';

const message = (what: string) => ({ error: `expected ${what}` });
const ruleName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, message('a rule name of letters, digits, "_" or "-"'));
const ruleNames = z.array(ruleName, message('a list of rule names'));

export const GUARDRAIL_DETECTORS = ['email', 'phone', 'payment_card', 'iban'] as const;

const ruleSchema = z
  .strictObject(
    {
      /** A file of terms, one a line; blank lines and lines starting with # are skipped. */
      words: z.string(message('a file path')).min(1, message('a file path')).optional(),
      terms: z.array(z.string(message('a term')), message('a list of terms')).optional(),
      whole_words: z.boolean(message('true or false')).default(true),
      regex: z
        .string(message('a regular expression'))
        .refine((pattern) => {
          try {
            new RegExp(pattern, 'u');
            return pattern.length > 0;
          } catch {
            return false;
          }
        }, message('a valid regular expression (JavaScript syntax)'))
        .optional(),
      /** A regex rule's longest match, and so how much of a stream it may hold back. */
      max_length: z.number(message('an integer between 1 and 1024')).int().min(1).max(1024).default(64),
      detector: z.enum(GUARDRAIL_DETECTORS, message(`one of ${GUARDRAIL_DETECTORS.map((d) => `"${d}"`).join(', ')}`)).optional(),
      action: z.enum(['block', 'mask', 'flag'], message('"block", "mask" or "flag"')).default('mask'),
      on: z.array(z.enum(['input', 'output'], message('"input" or "output"')), message('a list such as ["input", "output"]')).default(() => ['input' as const, 'output' as const]),
      /** Replaces a masked match; defaults to [guardrails] mask. */
      mask: z.string(message('a text')).optional(),
    },
    message('a table of rule settings ([guardrails.rules.<name>])'),
  )
  .refine((rule) => [rule.words !== undefined || rule.terms !== undefined, rule.regex !== undefined, rule.detector !== undefined].filter(Boolean).length === 1, {
    error: 'expected exactly one of words/terms, regex or detector',
  });

export type GuardrailRuleConfig = z.output<typeof ruleSchema>;

export const guardrailsSection = z
  .strictObject(
    {
      mask: z.string(message('a text')).default('[redacted]'),
      /** Rules for every request, unless its key's plan or the key itself names others. */
      apply: ruleNames.default(() => []),
      /** Per plan: the rules its keys run under (replaces `apply`). */
      plans: z.record(z.string(), ruleNames, message('a table of plan = [rule names]')).default(() => ({})),
      rules: z.record(ruleName, ruleSchema, message('tables [guardrails.rules.<name>]')).default(() => ({})),
    },
    message('a table ([guardrails])'),
  )
  .superRefine((section, ctx) => {
    const lists: [string[], (string | number)[]][] = [[section.apply, ['apply']], ...Object.entries(section.plans).map(([plan, names]): [string[], (string | number)[]] => [names, ['plans', plan]])];
    for (const [names, path] of lists) {
      names.forEach((name, i) => {
        if (!(name in section.rules)) ctx.addIssue({ code: 'custom', path: [...path, i], message: `no rule named "${name}" in [guardrails.rules]` });
      });
    }
  });

export type GuardrailsConfig = z.output<typeof guardrailsSection>;

export const auditSection = z.strictObject(
  {
    /** Audit records for administrative changes and requests. */
    enabled: z.boolean(message('true or false')).default(true),
    /** A record per request (time, key id, model, tokens, cost, cache, guardrails, status). */
    requests: z.boolean(message('true or false')).default(true),
    retention_days: z.number(message('an integer between 1 and 3650')).int().min(1).max(3650).default(180),
  },
  message('a table ([audit])'),
);
