import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { DIMENSION, METRIC, type RejectionReason } from './metric-names.js';

/** The fields of a finished request that metrics are made of (a subset of its log line). */
export interface FinishedRequest {
  status: number;
  latencyMs: number;
  ttftMs?: number;
  promptTokens?: number;
  completionTokens?: number;
  costMicros?: number;
  cache?: string;
  /** The OpenAI error code of an error response. */
  errorCode?: string | null;
  /** For a 429: the limit that refused the request (admission's reason). */
  rejectedBy?: string;
  /** For a routed model: the kind of rule that picked the target. */
  routeReason?: string;
  /** Why each target the request left was left, in order (a fallback chain's triggers). */
  fallbacks?: string[];
}

/**
 * Emits one request's metrics as CloudWatch EMF (Powertools Metrics: a JSON line on stdout that
 * CloudWatch turns into metrics). Dimensions stay bounded: the service, and for rejections one
 * of a fixed set of reasons; never a key or model id.
 */
export function emitRequestMetrics(metrics: Metrics, request: FinishedRequest): void {
  metrics.addMetric(METRIC.requests, MetricUnit.Count, 1);
  metrics.addMetric(METRIC.latencyMs, MetricUnit.Milliseconds, request.latencyMs);
  if (request.ttftMs !== undefined) metrics.addMetric(METRIC.ttftMs, MetricUnit.Milliseconds, request.ttftMs);
  if (request.promptTokens) metrics.addMetric(METRIC.promptTokens, MetricUnit.Count, request.promptTokens);
  if (request.completionTokens) metrics.addMetric(METRIC.completionTokens, MetricUnit.Count, request.completionTokens);
  if (request.costMicros) metrics.addMetric(METRIC.costMicroUsd, MetricUnit.Count, request.costMicros);
  if (request.cache === 'HIT') metrics.addMetric(METRIC.cacheHits, MetricUnit.Count, 1);
  metrics.publishStoredMetrics();

  emitRoutingMetrics(metrics, request);

  const reason = rejectionReason(request);
  if (reason) {
    // A line of its own: the Reason dimension must not split the metrics above.
    metrics.addDimension(DIMENSION.reason, reason);
    metrics.addMetric(METRIC.rejections, MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  }
}

/** Route decisions and fallbacks, each on a line of its own: their dimensions are bounded sets. */
function emitRoutingMetrics(metrics: Metrics, { routeReason, fallbacks = [] }: FinishedRequest): void {
  if (routeReason) {
    metrics.addDimension(DIMENSION.routeReason, routeReason);
    metrics.addMetric(METRIC.routeDecisions, MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  }
  const counts = new Map<string, number>();
  for (const trigger of fallbacks) counts.set(trigger, (counts.get(trigger) ?? 0) + 1);
  for (const [trigger, count] of counts) {
    metrics.addDimension(DIMENSION.trigger, trigger);
    metrics.addMetric(METRIC.fallbacks, MetricUnit.Count, count);
    metrics.publishStoredMetrics();
  }
  const continued = fallbacks.filter((t) => t === 'stream_cut' || t === 'stream_stalled').length;
  if (continued > 0) {
    metrics.addMetric(METRIC.continuations, MetricUnit.Count, continued);
    metrics.publishStoredMetrics();
  }
}

/** One KeyBudgetThresholdCrossed data point: a key's spend crossed `percent` of a budget. */
export function emitBudgetThresholdCrossed(metrics: Metrics, percent: number): void {
  metrics.addDimension(DIMENSION.percent, String(percent));
  metrics.addMetric(METRIC.keyBudgetThresholdCrossed, MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
}

export function rejectionReason({ status, errorCode, rejectedBy }: FinishedRequest): RejectionReason | undefined {
  if (status < 400 || status >= 500 || status === 499) return undefined;
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return errorCode === 'model_not_found' ? 'model_not_found' : 'invalid_request';
  if (status === 413) return 'payload_too_large';
  if (status === 429) {
    if (errorCode === 'insufficient_quota') return 'budget_exceeded';
    if (rejectedBy?.endsWith('max_concurrent_requests')) return 'concurrency_limited';
    return 'rate_limited';
  }
  return 'invalid_request';
}
