// admission: API keys, plans and per-key limits, and admission control on DynamoDB (rate limits,
// concurrency, budgets): every check-and-count is one conditional write, exact under concurrency.
export * from './api-keys.js';
export * from './api-key-cache.js';
export * from './limits.js';
export * from './pricing.js';
export * from './windows.js';
export * from './admission-control.js';
export * from './admission-errors.js';
export type { BudgetCrossing } from './budget-alerts.js';
export type { RateLimitStatus } from './limits-item.js';
export { retryWithin, type SettledUsage } from './settlement.js';
export * from './usage-rollup.js';
