/**
 * Routing applied to the gateway's backends: a route name becomes a model that picks its target
 * per request by the route rules, and every routed target or model with a fallback list is
 * served through its fallback chain, with one circuit breaker per target.
 */
import type { GenerationInput, GenerationParams, ModelBackend, PrepareContext, PreparedGeneration } from '../backends/model-backend.js';
import { promptTokenBound } from '../backends/upstream-backend.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import { fallbackChain, reachable, type TargetSlots } from './fallback-chain.js';
import { ROUTE_HEADER, chooseRoute, lastUserMessage, type RouteTable } from './route-rules.js';

export interface RoutingOptions {
  /** Route name (a model id clients send) → its rules. */
  routes: ReadonlyMap<string, RouteTable>;
  /** Model or route name → the targets to try after it, in order. */
  fallbacks: ReadonlyMap<string, readonly string[]>;
  firstTokenTimeoutMs: number;
  stallTimeoutMs: number;
  breakers: CircuitBreakers;
  slots?: TargetSlots;
}

/** A route or fallback list naming a model the gateway does not serve. */
export class RoutingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RoutingConfigError';
  }
}

/**
 * The backends clients can name: the plain ones, models with fallbacks as chains, and each route.
 * Targets are looked up in `backends`, so a route can't reach a model the gateway does not serve;
 * per request, a target named like an alias goes to the version the alias picks (see routedBackend).
 */
export function withRouting(backends: ReadonlyMap<string, ModelBackend>, options: RoutingOptions): Map<string, ModelBackend> {
  const target = (name: string, where: string): ModelBackend => {
    const backend = backends.get(name);
    if (!backend) throw new RoutingConfigError(`${where} names the model "${name}", which is not served (known: ${[...backends.keys()].join(', ')})`);
    return backend;
  };
  /** `name` (or, when given, the version its alias picked) and then its fallbacks, or the route's. */
  const chainOf = (name: string, via: string | undefined, first?: ModelBackend): ModelBackend => {
    const after = options.fallbacks.get(name) ?? (via === undefined ? undefined : options.fallbacks.get(via)) ?? [];
    const names = [...new Set([name, ...after])];
    const targets = names.map((n, i) => (i === 0 && first ? first : target(n, `the fallbacks of "${via ?? name}"`)));
    return fallbackChain({
      id: via ?? name,
      targets: targets.map((backend) => ({ backend, breaker: options.breakers.for(backend.version) })),
      firstTokenTimeoutMs: options.firstTokenTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      slots: options.slots,
    });
  };

  const routed = new Map(backends);
  for (const name of options.fallbacks.keys()) if (backends.has(name)) routed.set(name, chainOf(name, undefined));
  for (const [name, table] of options.routes) {
    if (backends.has(name)) throw new RoutingConfigError(`the route "${name}" has the name of a model; give it a name of its own`);
    for (const n of [table.defaultTarget, ...table.rules.map((r) => r.target)]) target(n, `the route "${name}"`);
    const chains = new Map([table.defaultTarget, ...table.rules.map((r) => r.target)].map((n) => [n, chainOf(n, name)]));
    const aliasedChain = (targetName: string, aliased: ModelBackend) => chainOf(targetName, name, aliased);
    routed.set(name, routedBackend(name, table, chains, target(table.defaultTarget, name), aliasedChain));
  }
  return routed;
}

function routedBackend(
  name: string,
  table: RouteTable,
  chains: ReadonlyMap<string, ModelBackend>,
  defaultTarget: ModelBackend,
  aliasedChain: (target: string, aliased: ModelBackend) => ModelBackend,
): ModelBackend {
  const countsPrompt = table.rules.some((r) => r.when.kind === 'prompt_tokens');
  return {
    id: name,
    version: defaultTarget.version,
    ...reachable([...chains.values()], defaultTarget),
    async prepare(input: GenerationInput, params: GenerationParams, context?: PrepareContext): Promise<PreparedGeneration> {
      const decision = chooseRoute(table, {
        promptTokens: countsPrompt ? await promptTokensOf(defaultTarget, input, params) : 0,
        maxTokens: params.maxTokens,
        lastUserMessage: lastUserMessage(input),
        routeHeader: context?.headers.get(ROUTE_HEADER) ?? undefined,
      });
      context?.report?.({ route: decision.rule, routeReason: decision.reason, routeTarget: decision.target });
      // A target with an alias of its name follows it, so releases and canaries reach routed traffic.
      const aliased = await context?.resolveAlias?.(decision.target);
      const chain = aliased ? aliasedChain(decision.target, aliased) : chains.get(decision.target)!;
      const prepared = await chain.prepare(input, params, context);
      // The cache keys answers by the version the route picked, never by the route's name.
      return { ...prepared, version: prepared.version ?? chain.version };
    },
  };
}

/** The prompt as the default target counts it; one too long for it is counted by the byte bound. */
async function promptTokensOf(backend: ModelBackend, input: GenerationInput, params: GenerationParams): Promise<number> {
  try {
    return (await backend.prepare(input, params)).promptTokens;
  } catch {
    return promptTokenBound(input);
  }
}
