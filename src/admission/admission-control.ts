import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { itemKeys, type ItemKey, type Store } from '../store/index.js';
import { AdmissionRejectedError, type RejectionReason } from './admission-errors.js';
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
import { windowsAt, type Windows } from './windows.js';

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
 * before generation; settling releases the hold and commits the actual cost (one conditional
 * write; the usage roll-up for reports follows off the response's path). A request that dies without settling leaves its hold behind; once
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
  /** A cap on requests in flight for the model, across all keys; 0 or absent for none. */
  model?: { id: string; maxConcurrentRequests: number };
}

/** A request let in: settle it exactly once when it ends, however it ends. */
export interface Admission {
  readonly keyId: string;
  readonly holdId: string;
  readonly windows: Windows;
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
  now?: () => number;
}

export interface BudgetCrossing {
  period: 'day' | 'month';
  percent: number;
  spentMicros: number;
  budgetMicros: number;
}

export class AdmissionControl {
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: AdmissionOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Counts the request against every limit and reserves its largest cost, in one conditional write. */
  async admit(request: AdmissionRequest): Promise<Admission> {
    const windows = windowsAt(this.now());
    const reservedMicros = costMicros(request.promptTokens, request.maxTokens, request.price);
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

    const item = await this.conditionalAdd(itemKeys.keyLimits(request.keyId), holdId, hold, plan.adds, plan.conditions, windows);
    const admission: Admission = {
      keyId: request.keyId,
      holdId,
      windows,
      reservedMicros,
      reservedTokens,
      price: request.price,
      rateLimits: rateLimitStatus(request.limits, item, windows),
      staleAttributes: staleAttributes(item, windows),
    };
    const cap = request.model?.maxConcurrentRequests ?? 0;
    if (!request.model || cap <= 0) return admission;

    // A second write, only when a per-model cap is configured: the model's item is shared by all keys.
    try {
      await this.conditionalAdd(
        itemKeys.modelLimits(request.model.id),
        holdId,
        { ...hold, usd: 0, tok: 0 },
        { conc: 1 },
        [{ attribute: 'conc', limit: cap, room: cap - 1, reason: 'model_max_concurrent_requests' }],
        windows,
      );
    } catch (error) {
      // The key's slot was taken for nothing: give it back (with no spend).
      await this.release(admission, { promptTokens: 0, completionTokens: 0 }).catch(() => undefined);
      throw error;
    }
    return { ...admission, modelId: request.model.id };
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
   * Ends a request: frees its slot, turns its reservation into the actual cost and adds its
   * completion tokens to the minute's token count, in one conditional write that completes before
   * the response does (so a client's next request never finds its own slot still taken). The
   * usage roll-up for reports is a second write that need not hold the response up: it comes
   * back as `rollup` for the caller to await when convenient. Returns the cost in micro-dollars.
   */
  async settle(
    admission: Admission,
    usage: { promptTokens: number; completionTokens: number },
  ): Promise<{ costMicros: number; rollup: Promise<void> }> {
    const cost = costMicros(usage.promptTokens, usage.completionTokens, admission.price);
    const releases: Promise<void>[] = [this.release(admission, usage, cost)];
    if (admission.modelId) releases.push(this.releaseModelHold(admission));
    await Promise.all(releases);
    return { costMicros: cost, rollup: this.rollUpUsage(admission, usage, cost) };
  }

  private async release(admission: Admission, usage: { promptTokens: number; completionTokens: number }, cost = 0): Promise<void> {
    const { windows } = admission;
    const tokens = usage.promptTokens + usage.completionTokens;
    const own = new Set([
      `tpm_${windows.minute}`,
      `usd_d_${windows.day}`,
      `usd_m_${windows.month}`,
      `tok_d_${windows.day}`,
      `tok_m_${windows.month}`,
      `spent_d_${windows.day}`,
      `spent_m_${windows.month}`,
    ]);
    const spend = {
      [`usd_d_${windows.day}`]: cost,
      [`usd_m_${windows.month}`]: cost,
      [`tok_d_${windows.day}`]: tokens,
      [`tok_m_${windows.month}`]: tokens,
      [`spent_d_${windows.day}`]: cost,
      [`spent_m_${windows.month}`]: cost,
      [`tpm_${windows.minute}`]: usage.completionTokens,
    };
    // Releasing the hold undoes the reservation and the in-flight count; spend is added on top.
    const withHold = {
      ...spend,
      conc: -1,
      [`usd_d_${windows.day}`]: cost - admission.reservedMicros,
      [`usd_m_${windows.month}`]: cost - admission.reservedMicros,
      [`tok_d_${windows.day}`]: tokens - admission.reservedTokens,
      [`tok_m_${windows.month}`]: tokens - admission.reservedTokens,
    };
    const remove = [`h_${admission.holdId}`, ...admission.staleAttributes.filter((a) => !own.has(a))];
    const key = itemKeys.keyLimits(admission.keyId);
    try {
      await this.store.client.send(new UpdateCommand(updateInput(this.store, key, withHold, remove, 'attribute_exists(#r0)')));
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
      // The hold expired and was reclaimed meanwhile: its slot and reservation are already
      // released, so only the spend is still to be counted.
      await this.store.client.send(new UpdateCommand(updateInput(this.store, key, spend, []))).catch((e) => {
        throw unavailable(e);
      });
    }
  }

  private async releaseModelHold(admission: Admission): Promise<void> {
    const key = itemKeys.modelLimits(admission.modelId!);
    try {
      await this.store.client.send(new UpdateCommand(updateInput(this.store, key, { conc: -1 }, [`h_${admission.holdId}`], 'attribute_exists(#r0)')));
    } catch (error) {
      // Already reclaimed as expired: nothing left to release.
      if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
    }
  }

  /** Per key and UTC day: requests, tokens and cost, for usage reports. */
  private async rollUpUsage(admission: Admission, usage: { promptTokens: number; completionTokens: number }, cost: number): Promise<void> {
    const item = { pk: `USAGE#${admission.keyId}#${admission.windows.day}`, sk: 'USAGE' };
    const counts = { requests: 1, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, costMicros: cost };
    await this.store.client.send(new UpdateCommand(updateInput(this.store, item, counts, []))).catch((error) => {
      throw unavailable(error);
    });
  }

  /**
   * The budget thresholds (percent of a daily or monthly budget) this key's spend has crossed and
   * that nobody reported yet. Each crossing is claimed with a conditional write, so across all
   * instances it is reported exactly once. Costs a read, and a write per new crossing.
   */
  async newBudgetCrossings(admission: Admission, limits: Limits, percents: readonly number[]): Promise<BudgetCrossing[]> {
    const { day, month } = admission.windows;
    const budgets = [
      { period: 'day' as const, limit: limits.budgetMicrosPerDay, spent: `spent_d_${day}`, alert: (p: number) => `alert${p}_d_${day}` },
      { period: 'month' as const, limit: limits.budgetMicrosPerMonth, spent: `spent_m_${month}`, alert: (p: number) => `alert${p}_m_${month}` },
    ].filter((b): b is typeof b & { limit: number } => b.limit !== undefined && b.limit > 0);
    if (budgets.length === 0 || percents.length === 0) return [];
    const key = itemKeys.keyLimits(admission.keyId);
    let item: Item;
    try {
      item = (await this.store.client.send(new GetCommand({ TableName: this.store.tableName, Key: key, ConsistentRead: true }))).Item ?? {};
    } catch (error) {
      throw unavailable(error);
    }
    const crossings: BudgetCrossing[] = [];
    for (const budget of budgets) {
      const spent = typeof item[budget.spent] === 'number' ? (item[budget.spent] as number) : 0;
      for (const percent of percents) {
        if (spent * 100 < percent * budget.limit || item[budget.alert(percent)] !== undefined) continue;
        try {
          await this.store.client.send(
            new UpdateCommand({
              TableName: this.store.tableName,
              Key: key,
              UpdateExpression: 'SET #alert = :at',
              ConditionExpression: 'attribute_not_exists(#alert)',
              ExpressionAttributeNames: { '#alert': budget.alert(percent) },
              ExpressionAttributeValues: { ':at': new Date(this.now()).toISOString() },
            }),
          );
          crossings.push({ period: budget.period, percent, spentMicros: spent, budgetMicros: budget.limit });
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
        }
      }
    }
    return crossings;
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
        const out = await this.store.client.send(
          new UpdateCommand({ ...input, ReturnValues: 'ALL_NEW', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }),
        );
        return out.Attributes ?? {};
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
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
        throw new AdmissionRejectedError(reason, retryAfter(reason, windows), {});
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

