// telemetry: structured request logs (one JSON line per request), later EMF metrics and audit
// events. Prompts and completions are never logged unless the operator turns it on.
export { requestLog, type RequestLogger } from './request-log.js';
export { emitBudgetThresholdCrossed, emitRequestMetrics, type FinishedRequest } from './request-metrics.js';
export { emitAliasAutoRollback, emitModelVersionMetrics } from './release-metrics.js';
