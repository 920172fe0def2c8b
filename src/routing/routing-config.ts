/** [routing] in aigw.toml, turned into route tables, fallback lists and breaker settings. */
import type { AigwConfig } from '../config/index.js';
import { CircuitBreakers } from './circuit-breaker.js';
import type { TargetSlots } from './fallback-chain.js';
import type { RoutingOptions } from './router.js';
import { rulePattern, wordPattern, type RouteCondition, type RouteRule, type RouteTable } from './route-rules.js';

type RoutingSection = AigwConfig['routing'];
type RuleConfig = RoutingSection['routes'][string]['rules'][number];

export function routingOptionsOf(routing: RoutingSection, slots?: TargetSlots): RoutingOptions {
  const routes = new Map<string, RouteTable>(
    Object.entries(routing.routes).map(([name, route]) => [
      name,
      { defaultTarget: route.default, rules: route.rules.map((rule, index): RouteRule => ({ name: rule.name ?? `rule ${index + 1}`, target: rule.target, when: conditionOf(rule) })) },
    ]),
  );
  return {
    routes,
    fallbacks: new Map(Object.entries(routing.fallbacks)),
    firstTokenTimeoutMs: routing.first_token_timeout_ms,
    stallTimeoutMs: routing.stall_timeout_ms,
    breakers: new CircuitBreakers({ failureThreshold: routing.breaker_failure_threshold, cooldownMs: routing.breaker_cooldown_seconds * 1000 }),
    slots,
  };
}

/** The schema let exactly one condition through. */
function conditionOf(rule: RuleConfig): RouteCondition {
  if (rule.prompt_tokens_over !== undefined) return { kind: 'prompt_tokens', over: rule.prompt_tokens_over };
  if (rule.max_tokens_over !== undefined) return { kind: 'max_tokens', over: rule.max_tokens_over };
  if (rule.matches !== undefined) return { kind: 'matches', pattern: rulePattern(rule.matches) };
  if (rule.words !== undefined) return { kind: 'words', pattern: wordPattern(rule.words) };
  return { kind: 'header', value: rule.header! };
}
