import type { PlanConfig } from '../config/index.js';

/** What one key may do. A limit left undefined is unlimited. Money in integer micro-dollars. */
export interface Limits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  requestsPerMonth?: number;
  maxConcurrentRequests?: number;
  budgetMicrosPerDay?: number;
  budgetMicrosPerMonth?: number;
  tokensPerDay?: number;
  tokensPerMonth?: number;
}

export const LIMIT_NAMES = [
  'requestsPerMinute',
  'tokensPerMinute',
  'requestsPerMonth',
  'maxConcurrentRequests',
  'budgetMicrosPerDay',
  'budgetMicrosPerMonth',
  'tokensPerDay',
  'tokensPerMonth',
] as const satisfies readonly (keyof Limits)[];

/** aigw.toml's plan keys (snake_case, dollars already turned into micro-dollars) → Limits. */
export function limitsOfPlan(plan: PlanConfig): Limits {
  return dropUndefined({
    requestsPerMinute: plan.requests_per_minute,
    tokensPerMinute: plan.tokens_per_minute,
    requestsPerMonth: plan.requests_per_month,
    maxConcurrentRequests: plan.max_concurrent_requests,
    budgetMicrosPerDay: plan.budget_usd_per_day,
    budgetMicrosPerMonth: plan.budget_usd_per_month,
    tokensPerDay: plan.tokens_per_day,
    tokensPerMonth: plan.tokens_per_month,
  });
}

export class UnknownPlanError extends Error {
  override readonly name = 'UnknownPlanError';
  constructor(readonly plan: string) {
    super(`the key's plan "${plan}" is not defined in aigw.toml ([plans.${plan}])`);
  }
}

/** The plan's defaults with the key's own overrides on top. */
export function effectiveLimits(plans: Readonly<Record<string, PlanConfig>>, plan: string, overrides: Limits): Limits {
  const planConfig = plans[plan];
  if (!planConfig) throw new UnknownPlanError(plan);
  return { ...limitsOfPlan(planConfig), ...dropUndefined(overrides) };
}

function dropUndefined(limits: Limits): Limits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) as Limits;
}
