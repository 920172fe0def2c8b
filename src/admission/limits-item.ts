// The layout of a key's (or model's) limits item and the pure functions around it: the
// conditions a request must pass, the UpdateItem input that checks and counts in one write.
import type { Store, ItemKey } from '../store/index.js';
import { AdmissionUnavailableError, type RejectionReason } from './admission-errors.js';
import type { AdmissionRequest } from './admission-control.js';
import type { Limits } from './limits.js';
import type { Windows } from './windows.js';

/** What OpenAI's x-ratelimit-* headers report, for the limits that are set. */
export interface RateLimitStatus {
  requests?: { limit: number; remaining: number; resetSeconds: number };
  tokens?: { limit: number; remaining: number; resetSeconds: number };
}

/** One request in flight, as an attribute h_<holdId> of the limits item. */
export interface Hold {
  exp: number;
  usd: number;
  tok: number;
  day: string;
  month: string;
}

export type Item = Record<string, unknown>;

export interface Condition {
  attribute: string;
  /** The configured limit, for diagnosis. */
  limit: number;
  /** The largest value the counter may have before this request for it to fit. */
  room: number;
  reason: RejectionReason;
}

export function requestConditions(limits: Limits, windows: Windows): Condition[] {
  const conditions: Condition[] = [];
  if (limits.requestsPerMinute !== undefined) {
    conditions.push({ attribute: `rpm_${windows.minute}`, limit: limits.requestsPerMinute, room: limits.requestsPerMinute - 1, reason: 'requests_per_minute' });
  }
  if (limits.requestsPerMonth !== undefined) {
    conditions.push({ attribute: `rpmo_${windows.month}`, limit: limits.requestsPerMonth, room: limits.requestsPerMonth - 1, reason: 'requests_per_month' });
  }
  return conditions;
}

export function admissionPlan(request: AdmissionRequest, windows: Windows, reservedMicros: number, reservedTokens: number) {
  const { limits, promptTokens } = request;
  const conditions = requestConditions(limits, windows);
  const add = (attribute: string, limit: number | undefined, need: number, reason: RejectionReason) => {
    if (limit !== undefined) conditions.push({ attribute, limit, room: limit - need, reason });
  };
  // Prompt tokens count now; completion tokens are added when the request settles.
  add(`tpm_${windows.minute}`, limits.tokensPerMinute, promptTokens, 'tokens_per_minute');
  add('conc', limits.maxConcurrentRequests, 1, 'max_concurrent_requests');
  add(`usd_d_${windows.day}`, limits.budgetMicrosPerDay, reservedMicros, 'budget_per_day');
  add(`usd_m_${windows.month}`, limits.budgetMicrosPerMonth, reservedMicros, 'budget_per_month');
  add(`tok_d_${windows.day}`, limits.tokensPerDay, reservedTokens, 'tokens_per_day');
  add(`tok_m_${windows.month}`, limits.tokensPerMonth, reservedTokens, 'tokens_per_month');
  const adds = {
    [`rpm_${windows.minute}`]: 1,
    [`rpmo_${windows.month}`]: 1,
    [`tpm_${windows.minute}`]: promptTokens,
    conc: 1,
    [`usd_d_${windows.day}`]: reservedMicros,
    [`usd_m_${windows.month}`]: reservedMicros,
    [`tok_d_${windows.day}`]: reservedTokens,
    [`tok_m_${windows.month}`]: reservedTokens,
  };
  return { conditions, adds };
}

export function passes(condition: Condition, item: Item): boolean {
  const value = item[condition.attribute];
  return typeof value !== 'number' || value <= condition.room;
}

export function conditionExpression(conditions: Condition[]): string | undefined {
  if (conditions.length === 0) return undefined;
  return conditions.map((_, i) => `(attribute_not_exists(#c${i}) OR #c${i} <= :c${i})`).join(' AND ');
}

/**
 * One UpdateItem's input: ADD for counters, SET for new maps, REMOVE for old attributes; every
 * name goes through a placeholder. `#r0` is the first removed attribute and `#c<i>`/`:c<i>` the
 * conditions (see conditionExpression), so callers can refer to them.
 */
export function updateInput(
  store: Store,
  key: ItemKey,
  adds: Record<string, number>,
  removes: string[],
  condition?: string,
  sets: Record<string, unknown> = {},
  conditions: Condition[] = [],
) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const clauses: string[] = [];
  const addParts = Object.entries(adds).map(([attribute, value], i) => {
    names[`#a${i}`] = attribute;
    values[`:a${i}`] = value;
    return `#a${i} :a${i}`;
  });
  if (addParts.length) clauses.push(`ADD ${addParts.join(', ')}`);
  const setParts = Object.entries(sets).map(([attribute, value], i) => {
    names[`#s${i}`] = attribute;
    values[`:s${i}`] = value;
    return `#s${i} = :s${i}`;
  });
  if (setParts.length) clauses.push(`SET ${setParts.join(', ')}`);
  const removeParts = removes.map((attribute, i) => {
    names[`#r${i}`] = attribute;
    return `#r${i}`;
  });
  if (removeParts.length) clauses.push(`REMOVE ${removeParts.join(', ')}`);
  conditions.forEach((c, i) => {
    names[`#c${i}`] = c.attribute;
    values[`:c${i}`] = c.room;
  });
  return {
    TableName: store.tableName,
    Key: key,
    UpdateExpression: clauses.join(' '),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
    ...(condition ? { ConditionExpression: condition } : {}),
  };
}

export function rateLimitStatus(limits: Limits, item: Item, windows: Windows): RateLimitStatus {
  const count = (attribute: string) => (typeof item[attribute] === 'number' ? (item[attribute] as number) : 0);
  const status: RateLimitStatus = {};
  if (limits.requestsPerMinute !== undefined) {
    const remaining = limits.requestsPerMinute - count(`rpm_${windows.minute}`);
    status.requests = { limit: limits.requestsPerMinute, remaining: Math.max(0, remaining), resetSeconds: windows.secondsToNextMinute };
  }
  if (limits.tokensPerMinute !== undefined) {
    const remaining = limits.tokensPerMinute - count(`tpm_${windows.minute}`);
    status.tokens = { limit: limits.tokensPerMinute, remaining: Math.max(0, remaining), resetSeconds: windows.secondsToNextMinute };
  }
  return status;
}

const WINDOWED = /^(rpm|tpm|rpmo|usd_d|usd_m|tok_d|tok_m|spent_d|spent_m|alert\d+_d|alert\d+_m)_(.+)$/;

export function staleAttributes(item: Item, windows: Windows): string[] {
  const current: Record<string, string> = {
    rpm: windows.minute,
    tpm: windows.minute,
    rpmo: windows.month,
    usd_d: windows.day,
    tok_d: windows.day,
    spent_d: windows.day,
    usd_m: windows.month,
    tok_m: windows.month,
    spent_m: windows.month,
  };
  return Object.keys(item).filter((attribute) => {
    const match = WINDOWED.exec(attribute);
    if (match === null) return false;
    // alert80_d → its window kind is that of spent_d.
    const kind = match[1]!.replace(/^alert\d+_/, 'spent_');
    return match[2] !== current[kind];
  });
}

export function expiredHolds(item: Item, nowSeconds: number): [string, Hold][] {
  return Object.entries(item).filter(
    (entry): entry is [string, Hold] => entry[0].startsWith('h_') && typeof (entry[1] as Hold)?.exp === 'number' && (entry[1] as Hold).exp <= nowSeconds,
  );
}

/**
 * Seconds a refused client should wait. A concurrency refusal names when the earliest hold in
 * the refusing item expires: the latest moment a slot is sure to be free (a dead request's hold
 * is reclaimed then), though a live request that ends frees its slot sooner.
 */
export function retryAfter(reason: RejectionReason, windows: Windows, refusedBy?: { item: Item; nowSeconds: number }): number {
  switch (reason) {
    case 'max_concurrent_requests':
    case 'model_max_concurrent_requests':
      return refusedBy ? secondsUntilFirstHoldExpires(refusedBy.item, refusedBy.nowSeconds) : 1;
    case 'requests_per_minute':
    case 'tokens_per_minute':
      return windows.secondsToNextMinute;
    case 'budget_per_day':
    case 'tokens_per_day':
      return windows.secondsToNextDay;
    case 'requests_per_month':
    case 'budget_per_month':
    case 'tokens_per_month':
      return windows.secondsToNextMonth;
    default:
      return 1;
  }
}

function secondsUntilFirstHoldExpires(item: Item, nowSeconds: number): number {
  let earliest = Infinity;
  for (const [attribute, value] of Object.entries(item)) {
    const exp = (value as Hold | undefined)?.exp;
    if (attribute.startsWith('h_') && typeof exp === 'number' && exp < earliest) earliest = exp;
  }
  return earliest === Infinity ? 1 : Math.max(1, earliest - nowSeconds);
}

export function unavailable(error: unknown): AdmissionUnavailableError {
  return new AdmissionUnavailableError(`the limits table did not answer: ${(error as Error).message}`, { cause: error });
}
