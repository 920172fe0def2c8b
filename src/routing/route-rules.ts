/**
 * Route rules: which target a request for a routed model goes to. Rules are tried in the order
 * the operator wrote them; the first that matches wins, else the default target.
 */
import type { GenerationInput } from '../backends/model-backend.js';

export type RouteCondition =
  | { kind: 'prompt_tokens'; over: number }
  | { kind: 'max_tokens'; over: number }
  | { kind: 'matches'; pattern: RegExp }
  | { kind: 'words'; pattern: RegExp }
  | { kind: 'header'; value: string };

export interface RouteRule {
  /** For the request log and metrics, e.g. "long-prompts". */
  name: string;
  target: string;
  when: RouteCondition;
}

export interface RouteTable {
  rules: readonly RouteRule[];
  defaultTarget: string;
}

/** What rules look at; the prompt token count is the default target's (see the router). */
export interface RouteFacts {
  promptTokens: number;
  maxTokens: number | undefined;
  lastUserMessage: string;
  /** The `x-aigw-route` header, when sent. */
  routeHeader: string | undefined;
}

export interface RouteDecision {
  target: string;
  /** The rule's name, or "default". */
  rule: string;
  reason: RouteCondition['kind'] | 'default';
}

export const ROUTE_HEADER = 'x-aigw-route';

export function chooseRoute(table: RouteTable, facts: RouteFacts): RouteDecision {
  for (const rule of table.rules) {
    if (matches(rule.when, facts)) return { target: rule.target, rule: rule.name, reason: rule.when.kind };
  }
  return { target: table.defaultTarget, rule: 'default', reason: 'default' };
}

function matches(when: RouteCondition, facts: RouteFacts): boolean {
  switch (when.kind) {
    case 'prompt_tokens':
      return facts.promptTokens > when.over;
    case 'max_tokens':
      // A request that sets no max_tokens asks for nothing in particular: only an explicit one matches.
      return facts.maxTokens !== undefined && facts.maxTokens > when.over;
    case 'matches':
    case 'words':
      return when.pattern.test(facts.lastUserMessage);
    case 'header':
      return facts.routeHeader !== undefined && facts.routeHeader.trim().toLowerCase() === when.value.toLowerCase();
  }
}

/** The text word and regex rules look at: the last user message of a chat, or the whole prompt. */
export function lastUserMessage(input: GenerationInput): string {
  if (input.kind === 'text') return input.prompt;
  for (let i = input.messages.length - 1; i >= 0; i--) {
    if (input.messages[i]!.role === 'user') return input.messages[i]!.content;
  }
  return '';
}

/** Any of the words as a whole word, ignoring case: "prove" matches "Prove it" but not "improve". */
export function wordPattern(words: readonly string[]): RegExp {
  const escaped = words.map((w) => w.trim()).filter((w) => w.length > 0).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`(?<![\\p{L}\\p{N}_])(?:${escaped.join('|')})(?![\\p{L}\\p{N}_])`, 'iu');
}

/** A rule's regex, case-insensitive; a pattern that does not compile is a config error naming it. */
export function rulePattern(source: string): RegExp {
  return new RegExp(source, 'iu');
}
