// routing: which model version serves a request. The registry of served versions, aliases in
// DynamoDB (blue/green, weighted canary, sticky, automatic rollback), route rules, fallback chains
// that survive a dead or broken target (continuing a cut stream), circuit breakers.
export * from './model-registry.js';
export * from './aliases.js';
export * from './alias-store.js';
export * from './sticky-assignment.js';
export * from './canary-health.js';
export * from './model-resolver.js';
export * from './upstream-models.js';
export * from './release-setup.js';
export { CircuitBreaker, CircuitBreakers, type BreakerPermit, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.js';
export { canContinue, continuationInput } from './continuation.js';
export { fallbackChain, triggerBeforeFirstToken, type AttemptRecord, type ChainTarget, type FallbackChainOptions, type FallbackTrigger, type TargetSlots } from './fallback-chain.js';
export { ROUTE_HEADER, chooseRoute, lastUserMessage, wordPattern, type RouteCondition, type RouteDecision, type RouteFacts, type RouteRule, type RouteTable } from './route-rules.js';
export { RoutingConfigError, withRouting, type RoutingOptions } from './router.js';
export { routedModels, routingOptionsOf } from './routing-config.js';
export { DeadlineError, RoutingError, type RoutingErrorCode } from './routing-errors.js';
