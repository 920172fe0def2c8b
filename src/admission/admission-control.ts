import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { itemKeys, type ItemKey, type Store } from '../store/index.js';
import { AdmissionRejectedError, AdmissionUnavailableError, type RejectionReason } from './admission-errors.js';
import { type BudgetCrossing, claimBudgetCrossings } from './budget-alerts.js';
import type { Limits } from './limits.js';
import {
  admissionPlan,
  conditionExpression,
  expiredHolds,
  passes,
  rateLimitStatus,
  requestConditions,
  retryAfter,
  staleAttributes,
  unavailable,
  updateInput,
  type Condition,
  type Hold,
  type Item,
  type RateLimitStatus,
} from './limits-item.js';
import { costMicros, type ModelPrice } from './pricing.js';
import { releaseHold, releaseModelHold, type SettledUsage } from './settlement.js';
import { UsageRollup, type UsageEvent } from './usage-rollup.js';
import { fenceCondition, mayHaveLanded, takeBackAdmission } from './unconfirmed-admission.js';
import { windowsAt, type Windows } from './windows.js';

const NOTHING: SettledUsage = { promptTokens: 0, completionTokens: 0 };

/*
 * How limits stay exact under any concurrency, across any number of gateway instances:
 * everything admission counts for a key lives in ONE DynamoDB item (LIMITS#KEY#<keyId>), and
 * admitting a request is ONE UpdateItem whose condition checks every limit and whose update
 * counts the request, so DynamoDB serialises concurrent admissions and at a limit of L exactly
 * L get in. The item holds, as attributes named by window:
 *   rpm_<minute>, tpm_<minute>   requests and tokens in a fixed one-minute window
 *   rpmo_<month>                 requests in the calendar month
 *   conc                         requests in flight
 *   usd_d_<day>, usd_m_<month>   committed micro-dollars: spent + reserved by requests in flight
 *   tok_d_<day>, tok_m_<month>   committed tokens, likewise
 *   spent_d_<day>, spent_m_<month>  micro-dollars actually spent
 *   h_<holdId>                   one in-flight request: what it reserved, and when it expires
 *   alert<pct>_d_<day>, alert<pct>_m_<month>  set once when spend crosses pct % of a budget
 * A request reserves the most it can cost (prompt × input price + max_tokens × output price)
 * before generation; settling, after the response, releases the hold and commits the actual cost
 * (one conditional write, see settlement.ts; the usage roll-up follows). A request that dies
 * without settling, or whose settlement failed for its whole budget, leaves its hold behind; once
 * the hold expires (lease_seconds after admission), the next request that a limit would
 * refuse reclaims it first, so a dead request blocks a slot or budget for at most lease_seconds.
 */

export interface AdmissionRequest {
  keyId: string;
  limits: Limits;
  promptTokens: number;
  /** The most completion tokens the request may produce. */
  maxTokens: number;
  price: ModelPrice;
  /** Reserve this instead of the prompt and maxTokens at `price` (a fallback chain may use several prices). */
  reserveMicros?: number;
  /** A cap on requests in flight for the model, across all keys; 0 or absent for none. */
  model?: { id: string; maxConcurrentRequests: number };
}

/** A request let in: settle it exactly once when it ends, however it ends. */
export interface Admission {
  readonly keyId: string;
  readonly holdId: string;
  readonly windows: Windows;
  readonly promptTokens: number;
  readonly reservedMicros: number;
  readonly reservedTokens: number;
  readonly price: ModelPrice;
  readonly rateLimits: RateLimitStatus;
  readonly modelId?: string;
  /** Attributes of past windows seen at admission, removed when settling to keep the item small. */
  readonly staleAttributes: readonly string[];
}

export interface AdmissionOptions {
  /** Seconds after which a request that never settled stops holding its slot and reservation. */
  leaseSeconds: number;
  /** How long a settlement (and a usage roll-up write) is retried before it gives up; default 5 s. */
  settleBudgetMs?: number;
  now?: () => number;
}

const DEFAULT_SETTLE_BUDGET_MS = 5_000;

/** Refusals that a settlement of this instance still under way may lift: it frees a slot or a reservation. */
const LIFTED_BY_SETTLING: ReadonlySet<RejectionReason> = new Set([
  'max_concurrent_requests',
  'model_max_concurrent_requests',
  'budget_per_day',
  'budget_per_month',
  'tokens_per_day',
  'tokens_per_month',
]);

export class AdmissionControl {
  private readonly now: () => number;
  readonly settleBudgetMs: number;
  private readonly usage: UsageRollup;
  /** Settlements of this instance still under way, by limits item (key id, or model: + model id). */
  private readonly settling = new Map<string, Set<Promise<unknown>>>();

  constructor(
    private readonly store: Store,
    private readonly options: AdmissionOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.settleBudgetMs = options.settleBudgetMs ?? DEFAULT_SETTLE_BUDGET_MS;
    this.usage = new UsageRollup(store, this.settleBudgetMs);
  }

  /**
   * Counts the request against every limit and reserves its largest cost, in one conditional write
   * (and, with a per-model cap, one on the model's item at the same time: one round trip either way).
   * Settlement runs after the response, so a client's next request can arrive before its previous
   * one is settled; refused by a limit that settlement frees while this instance still settles
   * for the key, it waits for those settlements and asks once more.
   */
  async admit(request: AdmissionRequest): Promise<Admission> {
    try {
      return await this.admitOnce(request);
    } catch (error) {
      if (!(error instanceof AdmissionRejectedError) || !LIFTED_BY_SETTLING.has(error.reason)) throw error;
      const pending = [...(this.settling.get(request.keyId) ?? []), ...(request.model ? (this.settling.get(`model:${request.model.id}`) ?? []) : [])];
      if (pending.length === 0) throw error;
      await Promise.allSettled(pending);
      return this.admitOnce(request);
    }
  }

  private async admitOnce(request: AdmissionRequest): Promise<Admission> {
    const windows = windowsAt(this.now());
    const reservedMicros = request.reserveMicros ?? costMicros(request.promptTokens, request.maxTokens, request.price);
    const reservedTokens = request.promptTokens + request.maxTokens;
    const holdId = randomBytes(9).toString('base64url');
    const hold: Hold = {
      exp: Math.floor(this.now() / 1000) + this.options.leaseSeconds,
      usd: reservedMicros,
      tok: reservedTokens,
      day: windows.day,
      month: windows.month,
    };
    const plan = admissionPlan(request, windows, reservedMicros, reservedTokens);
    const refusedUpfront = plan.conditions.find((c) => c.room < 0);
    if (refusedUpfront) throw new AdmissionRejectedError(refusedUpfront.reason, retryAfter(refusedUpfront.reason, windows), {});

    const cap = request.model?.maxConcurrentRequests ?? 0;
    const modelId = request.model && cap > 0 ? request.model.id : undefined;
    const [keyWrite, modelWrite] = await Promise.allSettled([
      this.conditionalAdd(itemKeys.keyLimits(request.keyId), holdId, hold, plan.adds, plan.conditions, windows),
      // The model's item is shared by all keys; written only when a per-model cap is configured.
      modelId
        ? this.conditionalAdd(
            itemKeys.modelLimits(modelId),
            holdId,
            { ...hold, usd: 0, tok: 0 },
            { conc: 1 },
            [{ attribute: 'conc', limit: cap, room: cap - 1, reason: 'model_max_concurrent_requests' }],
            windows,
          )
        : Promise.resolve(undefined),
    ]);
    const item = keyWrite.status === 'fulfilled' ? keyWrite.value : {};
    const admission: Admission = {
      keyId: request.keyId,
      holdId,
      windows,
      promptTokens: request.promptTokens,
      reservedMicros,
      reservedTokens,
      price: request.price,
      rateLimits: rateLimitStatus(request.limits, item, windows),
      staleAttributes: staleAttributes(item, windows),
      modelId,
    };
    if (keyWrite.status === 'fulfilled' && modelWrite.status === 'fulfilled') return admission;
    // One of the two refused: the place taken in the other was taken for nothing; give it back.
    if (keyWrite.status === 'fulfilled') await releaseHold(this.store, { ...admission, modelId: undefined }, NOTHING, 0, this.settleBudgetMs).catch(() => undefined);
    if (modelId && modelWrite.status === 'fulfilled') await releaseModelHold(this.store, admission, this.settleBudgetMs).catch(() => undefined);
    const failure: unknown = keyWrite.status === 'rejected' ? keyWrite.reason : (modelWrite as PromiseRejectedResult).reason;
    // Both writes may have timed out: the error thrown carries both take-backs.
    const takeBacks = [keyWrite, modelWrite].flatMap((w) => (w.status === 'rejected' && w.reason instanceof AdmissionUnavailableError && w.reason.takeBack ? [w.reason.takeBack] : []));
    if (failure instanceof AdmissionUnavailableError && takeBacks.length > 0) failure.takeBack = Promise.all(takeBacks).then(() => undefined);
    throw failure;
  }

  /**
   * A place among a model's requests in flight, across all keys and gateways, for one target of
   * a fallback chain: the release function, or undefined when the model is at its cap. The place
   * is a hold like a request's, so a gateway that dies holding it frees it after `leaseSeconds`.
   */
  async holdModelSlot(modelId: string, cap: number): Promise<(() => Promise<void>) | undefined> {
    const windows = windowsAt(this.now());
    const holdId = randomBytes(9).toString('base64url');
    const hold: Hold = { exp: Math.floor(this.now() / 1000) + this.options.leaseSeconds, usd: 0, tok: 0, day: windows.day, month: windows.month };
    try {
      await this.conditionalAdd(
        itemKeys.modelLimits(modelId),
        holdId,
        hold,
        { conc: 1 },
        [{ attribute: 'conc', limit: cap, room: cap - 1, reason: 'model_max_concurrent_requests' }],
        windows,
      );
    } catch (error) {
      if (error instanceof AdmissionRejectedError && error.reason === 'model_max_concurrent_requests') return undefined;
      throw error;
    }
    let released: Promise<void> | undefined;
    return () => (released ??= releaseModelHold(this.store, { modelId, holdId }, this.settleBudgetMs));
  }

  /** A cache hit: it counts toward request rate limits but reserves and spends nothing. */
  async admitCached(keyId: string, limits: Limits): Promise<RateLimitStatus> {
    const windows = windowsAt(this.now());
    const conditions = requestConditions(limits, windows);
    const refusedUpfront = conditions.find((c) => c.room < 0);
    if (refusedUpfront) throw new AdmissionRejectedError(refusedUpfront.reason, retryAfter(refusedUpfront.reason, windows), {});
    const item = await this.conditionalAdd(
      itemKeys.keyLimits(keyId),
      undefined,
      undefined,
      { [`rpm_${windows.minute}`]: 1, [`rpmo_${windows.month}`]: 1 },
      conditions,
      windows,
    );
    return rateLimitStatus(limits, item, windows);
  }

  /**
   * A request admitted in full (before the cache was known to hold its answer) that the cache then
   * answered: what remains counted is what admitCached counts, the request toward the request
   * limits. Returns the rate-limit status as admitCached would, and the write that gives back the
   * slot, the reservation and the prompt tokens, to run after the response.
   */
  asCacheHit(admission: Admission): { rateLimits: RateLimitStatus; release: () => Promise<void> } {
    const tokens = admission.rateLimits.tokens;
    const rateLimits = tokens
      ? { ...admission.rateLimits, tokens: { ...tokens, remaining: Math.min(tokens.limit, tokens.remaining + admission.promptTokens) } }
      : admission.rateLimits;
    return {
      rateLimits,
      release: () =>
        this.tracked(admission, () =>
          Promise.all([
            releaseHold(this.store, admission, NOTHING, 0, this.settleBudgetMs, -admission.promptTokens),
            admission.modelId ? releaseModelHold(this.store, admission, this.settleBudgetMs) : undefined,
          ]).then(() => undefined),
        ),
    };
  }

  /**
   * Ends a request: frees its slot, turns its reservation into the actual cost and adds its
   * completion tokens to the minute's token count (one conditional write, retried within
   * settleBudgetMs), then adds it to the usage roll-up. Meant to run after the response (the
   * adapters' waitUntil); if every try fails, the hold stays until its lease expires and is then
   * reclaimed, so a slot or reservation is never held longer than lease_seconds. Returns the cost
   * in micro-dollars.
   */
  async settle(admission: Admission, usage: SettledUsage): Promise<number> {
    // A fallback chain knows its cost better than one price times the tokens.
    const cost = usage.costMicros ?? costMicros(usage.promptTokens, usage.completionTokens, admission.price);
    await this.tracked(admission, () =>
      Promise.all([
        releaseHold(this.store, admission, usage, cost, this.settleBudgetMs),
        admission.modelId ? releaseModelHold(this.store, admission, this.settleBudgetMs) : undefined,
      ]),
    );
    const { promptTokens, completionTokens, version } = usage;
    await this.usage.add(admission.keyId, admission.windows.day, { kind: 'generated', promptTokens, completionTokens, costMicros: cost, version });
    return cost;
  }

  /** Adds a cache hit or a refusal to the key's usage roll-up (a served request adds itself when settled). */
  async recordUsage(keyId: string, event: Exclude<UsageEvent, { kind: 'generated' }>): Promise<void> {
    await this.usage.add(keyId, windowsAt(this.now()).day, event);
  }

  /** Runs a settlement, registered under its key's (and model's) item while it runs: see admit. */
  private async tracked<T>(admission: Admission, work: () => Promise<T>): Promise<T> {
    const running = work();
    const names = [admission.keyId, ...(admission.modelId ? [`model:${admission.modelId}`] : [])];
    for (const name of names) {
      const set = this.settling.get(name) ?? new Set();
      set.add(running);
      this.settling.set(name, set);
    }
    try {
      return await running;
    } finally {
      for (const name of names) {
        const set = this.settling.get(name);
        set?.delete(running);
        if (set?.size === 0) this.settling.delete(name);
      }
    }
  }

  /** The budget thresholds this key's spend has crossed that nobody reported yet (budget-alerts.ts). */
  newBudgetCrossings(admission: Admission, limits: Limits, percents: readonly number[]): Promise<BudgetCrossing[]> {
    return claimBudgetCrossings(this.store, this.now, admission.keyId, admission.windows, limits, percents);
  }

  /**
   * The one conditional write. On refusal DynamoDB returns the item as it was, which says which
   * limit refused; expired holds found there are reclaimed and the write is tried once more.
   */
  private async conditionalAdd(
    key: ItemKey,
    holdId: string | undefined,
    hold: Hold | undefined,
    adds: Record<string, number>,
    conditions: Condition[],
    windows: Windows,
  ): Promise<Item> {
    for (let attempt = 0; ; attempt++) {
      try {
        const input = updateInput(this.store, key, adds, [], conditionExpression(conditions), holdId ? { [`h_${holdId}`]: hold } : {}, conditions);
        // A hold-taking write is fenced: a take-back of one that timed out can refuse it if it lands late.
        const fence = fenceCondition(this.now());
        const fenced = holdId
          ? {
              ConditionExpression: [input.ConditionExpression, fence.expression].filter(Boolean).join(' AND '),
              ExpressionAttributeNames: { ...input.ExpressionAttributeNames, ...fence.names },
              ExpressionAttributeValues: { ...input.ExpressionAttributeValues, ...fence.values },
            }
          : {};
        const out = await this.store.client.send(
          new UpdateCommand({ ...input, ...fenced, ReturnValues: 'ALL_NEW', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }),
        );
        return out.Attributes ?? {};
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) {
          const failure = unavailable(error);
          if (holdId && mayHaveLanded(error)) failure.takeBack = takeBackAdmission(this.store, key, holdId, adds, this.now);
          throw failure;
        }
        const item = error.Item ? unmarshall(error.Item) : {};
        const failed = conditions.find((c) => !passes(c, item));
        const reclaimable = expiredHolds(item, Math.floor(this.now() / 1000));
        if (attempt === 0 && reclaimable.length > 0 && failed?.reason !== 'requests_per_minute' && failed?.reason !== 'requests_per_month') {
          await this.reclaim(key, reclaimable);
          continue;
        }
        // No limit refused against the item we got back: it changed in between; try again.
        if (!failed && attempt < 3) continue;
        const reason = failed?.reason ?? conditions[0]!.reason;
        throw new AdmissionRejectedError(reason, retryAfter(reason, windows, { item, nowSeconds: Math.floor(this.now() / 1000) }), {});
      }
    }
  }

  /** Releases expired holds, each at most once (a hold is removed only if still there). */
  private async reclaim(key: ItemKey, holds: [string, Hold][]): Promise<void> {
    for (const [attribute, hold] of holds) {
      const adds = {
        conc: -1,
        [`usd_d_${hold.day}`]: -hold.usd,
        [`usd_m_${hold.month}`]: -hold.usd,
        [`tok_d_${hold.day}`]: -hold.tok,
        [`tok_m_${hold.month}`]: -hold.tok,
      };
      try {
        await this.store.client.send(new UpdateCommand(updateInput(this.store, key, adds, [attribute], 'attribute_exists(#r0)')));
      } catch (error) {
        // Another instance reclaimed (or the request settled) first: nothing left to do.
        if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
      }
    }
  }
}

