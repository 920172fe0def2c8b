// Why admission refused a request, or could not check it; api/errors.ts maps both to a status.
import type { RateLimitStatus } from './limits-item.js';

export type RejectionReason =
  | 'requests_per_minute'
  | 'tokens_per_minute'
  | 'requests_per_month'
  | 'max_concurrent_requests'
  | 'model_max_concurrent_requests'
  | 'budget_per_day'
  | 'budget_per_month'
  | 'tokens_per_day'
  | 'tokens_per_month';

/** A limit refused the request: 429, `rate_limit_exceeded` or, for budgets, `insufficient_quota`. */
export class AdmissionRejectedError extends Error {
  override readonly name = 'AdmissionRejectedError';
  readonly quota: boolean;

  constructor(
    readonly reason: RejectionReason,
    readonly retryAfterSeconds: number,
    readonly rateLimits: RateLimitStatus,
  ) {
    super(REJECTION_MESSAGES[reason]);
    this.quota = reason.startsWith('budget') || reason === 'tokens_per_day' || reason === 'tokens_per_month';
  }
}

/** DynamoDB could not be reached in time, so limits can't be checked. */
export class AdmissionUnavailableError extends Error {
  override readonly name = 'AdmissionUnavailableError';
  /** Undoing a write that timed out but may still land (see unconfirmed-admission.ts): run it after the response. */
  takeBack?: Promise<void>;
}

const REJECTION_MESSAGES: Record<RejectionReason, string> = {
  requests_per_minute: 'Rate limit reached: requests per minute for this API key.',
  tokens_per_minute: 'Rate limit reached: tokens per minute for this API key.',
  requests_per_month: 'Rate limit reached: requests this month for this API key.',
  max_concurrent_requests: 'Too many requests in flight for this API key.',
  model_max_concurrent_requests: 'Too many requests in flight for this model.',
  budget_per_day: "This API key's daily budget is used up.",
  budget_per_month: "This API key's monthly budget is used up.",
  tokens_per_day: "This API key's daily token allowance is used up.",
  tokens_per_month: "This API key's monthly token allowance is used up.",
};
