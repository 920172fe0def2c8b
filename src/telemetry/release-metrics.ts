// Metrics of releases: each model version's own requests, errors, latency and cost (so a canary
// can be compared with stable on the dashboard), and automatic rollbacks of an alias.
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { DIMENSION, METRIC } from './metric-names.js';
import type { FinishedRequest } from './request-metrics.js';

/** A line of its own, so the ModelVersion dimension does not split the gateway-wide metrics. */
export function emitModelVersionMetrics(metrics: Metrics, request: FinishedRequest & { modelVersion?: string }): void {
  if (!request.modelVersion) return;
  metrics.addDimension(DIMENSION.modelVersion, request.modelVersion);
  metrics.addMetric(METRIC.requests, MetricUnit.Count, 1);
  metrics.addMetric(METRIC.serverErrors, MetricUnit.Count, request.status >= 500 ? 1 : 0);
  if (request.ttftMs !== undefined) metrics.addMetric(METRIC.ttftMs, MetricUnit.Milliseconds, request.ttftMs);
  if (request.promptTokens) metrics.addMetric(METRIC.promptTokens, MetricUnit.Count, request.promptTokens);
  if (request.completionTokens) metrics.addMetric(METRIC.completionTokens, MetricUnit.Count, request.completionTokens);
  if (request.costMicros) metrics.addMetric(METRIC.costMicroUsd, MetricUnit.Count, request.costMicros);
  metrics.publishStoredMetrics();
}

export function emitAliasAutoRollback(metrics: Metrics, alias: string): void {
  metrics.addDimension(DIMENSION.alias, alias);
  metrics.addMetric(METRIC.aliasAutoRollbacks, MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
}
