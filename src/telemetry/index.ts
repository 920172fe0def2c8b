// telemetry: structured request logs (one JSON line per request), EMF metrics, and OpenTelemetry
// spans and metrics over OTLP/HTTP. Prompts and completions are never logged unless turned on.
export { requestLog, type RequestLine, type RequestLogger } from './request-log.js';
export { emitBudgetThresholdCrossed, emitRequestMetrics, type FinishedRequest } from './request-metrics.js';
export { emitAliasAutoRollback, emitModelVersionMetrics } from './release-metrics.js';
export { otlpTelemetry, GEN_AI, AIGW_METRIC, type OtlpTelemetry, type OtlpOptions } from './otlp-telemetry.js';
