/** [routing] in aigw.toml, turned into route tables, fallback lists and breaker settings. */
import type { AdmissionControl } from '../admission/index.js';
import type { ModelBackend } from '../backends/model-backend.js';
import type { AigwConfig } from '../config/index.js';
import { CircuitBreakers } from './circuit-breaker.js';
import type { TargetSlots } from './fallback-chain.js';
import { withRouting, type RoutingOptions } from './router.js';
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

/**
 * The gateway's models with [routing] applied, and the per-model caps admission still applies
 * itself: a model served through a fallback chain has its cap applied per target by the chain
 * (a target at its cap hands the request to the next), so admission must not count it twice.
 */
export function routedModels(
  backends: ReadonlyMap<string, ModelBackend>,
  modelCaps: ReadonlyMap<string, number>,
  routing: RoutingSection,
  control: AdmissionControl | undefined,
): { backends: Map<string, ModelBackend>; modelCaps: Map<string, number> } {
  const capped = control && [...modelCaps.values()].some((cap) => cap > 0);
  const slots: TargetSlots | undefined = capped
    ? {
        acquire: async (target) => {
          // A version's own cap ([[models]] entry), else one set for the model's name.
          const id = modelCaps.has(target.version) ? target.version : target.id;
          const cap = modelCaps.get(id) ?? 0;
          return cap > 0 ? control.holdModelSlot(id, cap) : async () => undefined;
        },
      }
    : undefined;
  const routed = withRouting(backends, routingOptionsOf(routing, slots));
  const chained = new Set([...Object.keys(routing.routes), ...Object.keys(routing.fallbacks)]);
  return { backends: routed, modelCaps: new Map([...modelCaps].filter(([id]) => !chained.has(id))) };
}
