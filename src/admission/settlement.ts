// Ending an admitted request: its hold on the key's (and model's) limits item released and its
// actual cost committed, retried with backoff within a time budget, never counted twice.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { setTimeout as delay } from 'node:timers/promises';
import { itemKeys, type Store } from '../store/index.js';
import type { Admission } from './admission-control.js';
import { unavailable, updateInput } from './limits-item.js';

export interface SettledUsage {
  promptTokens: number;
  completionTokens: number;
  /** The cost when the backend knows it better than one price times the tokens (a fallback chain). */
  costMicros?: number;
  /** The model version that served (`name@version`), for the usage roll-up's per-version counts. */
  version?: string;
}

const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1_000;

/**
 * Runs `attempt` until it succeeds or `budgetMs` has passed, waiting 50 ms, 100 ms, 200 ms ... (at
 * most 1 s) between tries; the last error is thrown. Each try is itself bounded by the client's
 * request timeout, so the whole ends within the budget plus one try.
 */
export async function retryWithin<T>(budgetMs: number, attempt: (tryNumber: number) => Promise<T>): Promise<T> {
  const deadline = performance.now() + budgetMs;
  for (let tryNumber = 0, backoff = FIRST_BACKOFF_MS; ; tryNumber++, backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    try {
      return await attempt(tryNumber);
    } catch (error) {
      if (performance.now() + backoff >= deadline) throw error;
      await delay(backoff);
    }
  }
}

/**
 * Frees the request's slot, turns its reservation into the actual cost and adds its completion
 * tokens to the minute's token count: one conditional write, on the condition that the hold is
 * still there. `tpmCorrection` is added to the minute's token count as well (a cache hit takes
 * back the prompt tokens its admission counted).
 *
 * Retries make it idempotent without a marker: until the hold's lease ends nobody but this request
 * can remove it, so when a retry finds it gone, an earlier try of ours landed (its answer was lost)
 * and nothing is left to do. Found gone on the first try, it expired and was reclaimed: only the
 * spend is still to be counted. (A hold that expires while its retries run loses that spend: the
 * request outlived its lease, which is what lease_seconds bounds.)
 */
export async function releaseHold(store: Store, admission: Admission, usage: SettledUsage, cost: number, budgetMs: number, tpmCorrection = 0): Promise<void> {
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
    [`tpm_${windows.minute}`]: usage.completionTokens + tpmCorrection,
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
  const reclaimed = await retryWithin(budgetMs, async (tryNumber) => {
    try {
      await store.client.send(new UpdateCommand(updateInput(store, key, withHold, remove, 'attribute_exists(#r0)')));
      return false;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
      return tryNumber === 0;
    }
  });
  if (!reclaimed) return;
  // The hold expired and was reclaimed meanwhile: its slot and reservation are already released.
  // An ADD retried after a lost answer could count twice; this rare path errs toward counting.
  await retryWithin(budgetMs, () => store.client.send(new UpdateCommand(updateInput(store, key, spend, []))).catch((e) => Promise.reject(unavailable(e))));
}

/** Frees the request's place under its model's cap; a hold already gone (reclaimed, or an earlier try landed) is done. */
export async function releaseModelHold(store: Store, admission: Pick<Admission, 'modelId' | 'holdId'>, budgetMs: number): Promise<void> {
  const key = itemKeys.modelLimits(admission.modelId!);
  await retryWithin(budgetMs, async () => {
    try {
      await store.client.send(new UpdateCommand(updateInput(store, key, { conc: -1 }, [`h_${admission.holdId}`], 'attribute_exists(#r0)')));
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
    }
  });
}
