// routing: which model serves a request. Route rules pick a target, fallback chains survive a
// dead or broken target (continuing a cut stream), circuit breakers skip dead ones fast.
export { CircuitBreaker, CircuitBreakers, type BreakerPermit, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.js';
export { canContinue, continuationInput } from './continuation.js';
export { fallbackChain, triggerBeforeFirstToken, type AttemptRecord, type ChainTarget, type FallbackChainOptions, type FallbackTrigger, type TargetSlots } from './fallback-chain.js';
export { ROUTE_HEADER, chooseRoute, lastUserMessage, wordPattern, type RouteCondition, type RouteDecision, type RouteFacts, type RouteRule, type RouteTable } from './route-rules.js';
export { RoutingConfigError, withRouting, type RoutingOptions } from './router.js';
export { routedModels, routingOptionsOf } from './routing-config.js';
export { DeadlineError, RoutingError, type RoutingErrorCode } from './routing-errors.js';
