// The one list of aigw's CloudWatch metrics: the gateway emits them as EMF and the CDK stacks
// (infra/) graph and alarm on them, importing them from here. No CDK imports: Lambda bundles it.

/** CloudWatch namespace of every aigw metric (POWERTOOLS_METRICS_NAMESPACE of the gateway). */
export const METRIC_NAMESPACE = 'aigw';

/**
 * Powertools Metrics always adds a `service` dimension, and an alarm only matches a metric whose
 * dimension set is exactly the one it names: the gateway function gets POWERTOOLS_SERVICE_NAME =
 * GATEWAY_SERVICE_NAME, and the stacks alarm on { service: GATEWAY_SERVICE_NAME, ... }.
 */
export const SERVICE_DIMENSION = 'service';
export const GATEWAY_SERVICE_NAME = 'aigw-gateway';
/** POWERTOOLS_SERVICE_NAME of the model functions (their metrics, if any, stay apart from the gateway's). */
export const MODEL_SERVICE_NAME = 'aigw-model';

export const METRIC = {
  /** Count, one per request that reached the pipeline. */
  requests: 'Requests',
  /** Count of prompt tokens. */
  promptTokens: 'PromptTokens',
  /** Count of generated tokens. */
  completionTokens: 'CompletionTokens',
  /** Charged cost in integer micro-dollars (1 USD = 1,000,000). */
  costMicroUsd: 'CostMicroUsd',
  /** Count, one per response served from the cache. */
  cacheHits: 'CacheHits',
  /** Milliseconds from request to the last byte. */
  latencyMs: 'LatencyMs',
  /** Milliseconds from request to the first generated token. */
  ttftMs: 'TtftMs',
  /** Count, with dimension Reason. */
  rejections: 'Rejections',
  /** Count, with dimension RouteReason; one per request to a routed model. */
  routeDecisions: 'RouteDecisions',
  /** Count, with dimension Trigger; one per target a request left for the next one. */
  fallbacks: 'Fallbacks',
  /** Count, one per stream that broke or stalled after its first token (continued on the next target, or ended with stream_interrupted). */
  continuations: 'Continuations',
  /** Count, with dimension Percent; one per key per threshold crossing. */
  keyBudgetThresholdCrossed: 'KeyBudgetThresholdCrossed',
  /** Count, with dimension Alias; one per canary ended by automatic rollback (by the gateway whose write landed). */
  aliasAutoRollbacks: 'AliasAutoRollbacks',
  /** Count of 5xx responses; emitted per model version (dimension ModelVersion). */
  serverErrors: 'ServerErrors',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

export const DIMENSION = {
  /** On Rejections: one of REJECTION_REASONS (a bounded set, never a key or model id). */
  reason: 'Reason',
  /** On KeyBudgetThresholdCrossed: the crossed percent as a decimal string, e.g. "80". */
  percent: 'Percent',
  /**
   * On the per-version line (Requests, ServerErrors, TtftMs, tokens, CostMicroUsd): the exact
   * version that served, `name@version`; bounded by the configured models.
   */
  modelVersion: 'ModelVersion',
  /** On AliasAutoRollbacks: the alias name (bounded by the aliases an operator creates). */
  alias: 'Alias',
  /** On RouteDecisions: the kind of rule that matched (prompt_tokens, max_tokens, matches, words, header, default). */
  routeReason: 'RouteReason',
  /** On Fallbacks: why the target was left (a FallbackTrigger: timeout, server_error, stream_cut...). */
  trigger: 'Trigger',
} as const;

/** The bounded values of the Reason dimension; the dashboard graphs whatever values appear. */
export const REJECTION_REASONS = [
  'unauthenticated',
  'forbidden',
  'invalid_request',
  'model_not_found',
  'rate_limited',
  'concurrency_limited',
  'budget_exceeded',
  'payload_too_large',
] as const;

export type RejectionReason = (typeof REJECTION_REASONS)[number];

/** The dimension map of a gateway metric (the service dimension plus the metric's own). */
export function gatewayDimensions(extra: Record<string, string> = {}): Record<string, string> {
  return { [SERVICE_DIMENSION]: GATEWAY_SERVICE_NAME, ...extra };
}
