// Automatic rollback: every gateway counts each aliased request's outcome (error, time to first
// token) per target in DynamoDB time buckets, so all gateways judge the same numbers; when the
// canary is worse than stable beyond the alias's thresholds, one conditional write ends it.
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { itemKeys, type Store } from '../store/index.js';
import { rollbackAlias, type AliasRecord, type RollbackThresholds } from './aliases.js';
import { AliasConflictError, type AliasStore } from './alias-store.js';

export type TargetRole = 'stable' | 'canary';

export interface RequestOutcome {
  role: TargetRole;
  /** The backend failed (a server-side fault, not the client's mistake or its leaving). */
  error: boolean;
  ttftMs?: number;
}

export interface RoleStats {
  requests: number;
  errors: number;
  /** Sum and count of times to first token, in whole milliseconds. */
  ttftSumMs: number;
  ttftCount: number;
}

export interface CanaryVerdict {
  rollback: boolean;
  reason?: string;
}

export interface AutoRollback {
  alias: string;
  canary: string;
  stable: string;
  reason: string;
  stats: Record<TargetRole, RoleStats>;
  revision: number;
}

export interface CanaryHealthOptions {
  /** Width of one counter bucket; the window slides by this much. */
  bucketSeconds?: number;
  /** How often one gateway reads the window of one canary, at most. */
  checkIntervalMs?: number;
  now?: () => number;
  /** Told once, by the gateway whose write ended the canary (awaited: it may write an audit record). */
  onRollback?: (event: AutoRollback) => void | Promise<void>;
}

const DEFAULT_BUCKET_SECONDS = 10;
const DEFAULT_CHECK_INTERVAL_MS = 1000;
const EMPTY: RoleStats = { requests: 0, errors: 0, ttftSumMs: 0, ttftCount: 0 };

/**
 * The canary fails when its error rate exceeds the stable's by more than the threshold, or its
 * mean time to first token is more than the ratio times the stable's. Each side needs
 * `minRequests` in the window; without enough stable traffic (a canary at 100 %) the error rate
 * is judged against zero and time to first token is not judged.
 */
export function judgeCanary(stats: Record<TargetRole, RoleStats>, thresholds: RollbackThresholds): CanaryVerdict {
  const { canary, stable } = stats;
  if (!thresholds.enabled || canary.requests < thresholds.minRequests) return { rollback: false };
  const stableKnown = stable.requests >= thresholds.minRequests;
  const canaryErrors = canary.errors / canary.requests;
  const stableErrors = stableKnown ? stable.errors / stable.requests : 0;
  if (canaryErrors - stableErrors > thresholds.maxErrorRateIncrease) {
    return {
      rollback: true,
      reason: `error rate ${percent(canaryErrors)} vs ${percent(stableErrors)} for stable over ${canary.requests}/${stable.requests} requests (allowed +${percent(thresholds.maxErrorRateIncrease)})`,
    };
  }
  if (stableKnown && canary.ttftCount >= thresholds.minRequests && stable.ttftCount >= thresholds.minRequests) {
    const canaryTtft = canary.ttftSumMs / canary.ttftCount;
    const stableTtft = stable.ttftSumMs / stable.ttftCount;
    if (canaryTtft > stableTtft * thresholds.maxTtftRatio) {
      return {
        rollback: true,
        reason: `mean time to first token ${Math.round(canaryTtft)} ms vs ${Math.round(stableTtft)} ms for stable (allowed ${thresholds.maxTtftRatio}x)`,
      };
    }
  }
  return { rollback: false };
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

export class CanaryHealth {
  private readonly bucketSeconds: number;
  private readonly checkIntervalMs: number;
  private readonly now: () => number;
  private readonly lastCheck = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly aliases: AliasStore,
    private readonly options: CanaryHealthOptions = {},
  ) {
    this.bucketSeconds = options.bucketSeconds ?? DEFAULT_BUCKET_SECONDS;
    this.checkIntervalMs = options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    this.now = options.now ?? Date.now;
  }

  /** Counts one request of a running canary (one write), then judges the window when it is due. */
  async record(alias: AliasRecord, outcome: RequestOutcome): Promise<void> {
    const canary = alias.canary;
    if (!canary) return;
    const nowSeconds = Math.floor(this.now() / 1000);
    const bucket = nowSeconds - (nowSeconds % this.bucketSeconds);
    const adds: Record<string, number> = { [`${outcome.role}_n`]: 1, [`${outcome.role}_err`]: outcome.error ? 1 : 0 };
    if (outcome.ttftMs !== undefined) Object.assign(adds, { [`${outcome.role}_ttft`]: Math.round(outcome.ttftMs), [`${outcome.role}_ttft_n`]: 1 });
    const names: Record<string, string> = { '#ttl': 'ttl' };
    const values: Record<string, number> = { ':ttl': bucket + alias.thresholds.windowSeconds + 3600 };
    const parts = Object.entries(adds).map(([attribute, value], i) => {
      names[`#a${i}`] = attribute;
      values[`:a${i}`] = value;
      return `#a${i} :a${i}`;
    });
    await this.store.client.send(
      new UpdateCommand({
        TableName: this.store.tableName,
        Key: itemKeys.aliasHealth(alias.name, canary.id, bucket),
        UpdateExpression: `ADD ${parts.join(', ')} SET #ttl = :ttl`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
    const checkKey = `${alias.name}\u0000${canary.id}`;
    const last = this.lastCheck.get(checkKey) ?? -Infinity;
    if (this.now() - last < this.checkIntervalMs) return;
    this.lastCheck.set(checkKey, this.now());
    await this.check(alias);
  }

  /** The counts of the alias's running canary over its window (strongly consistent). */
  async window(alias: AliasRecord): Promise<Record<TargetRole, RoleStats>> {
    const stats = { stable: { ...EMPTY }, canary: { ...EMPTY } };
    if (!alias.canary) return stats;
    const nowSeconds = Math.floor(this.now() / 1000);
    const from = itemKeys.aliasHealth(alias.name, alias.canary.id, nowSeconds - alias.thresholds.windowSeconds + 1);
    const to = itemKeys.aliasHealth(alias.name, alias.canary.id, nowSeconds);
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.store.client.send(
        new QueryCommand({
          TableName: this.store.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': from.pk, ':from': from.sk, ':to': to.sk },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        for (const role of ['stable', 'canary'] as const) {
          const count = (suffix: string) => Number(item[`${role}${suffix}`] ?? 0);
          stats[role].requests += count('_n');
          stats[role].errors += count('_err');
          stats[role].ttftSumMs += count('_ttft');
          stats[role].ttftCount += count('_ttft_n');
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return stats;
  }

  /**
   * Judges the window and, when the canary fails, ends it with one write conditional on the
   * alias's revision: of several gateways deciding at once, exactly one write lands.
   */
  async check(alias: AliasRecord): Promise<AutoRollback | undefined> {
    if (!alias.canary || !alias.thresholds.enabled) return undefined;
    const stats = await this.window(alias);
    const verdict = judgeCanary(stats, alias.thresholds);
    if (!verdict.rollback) return undefined;
    const current = await this.aliases.read(alias.name);
    if (!current?.canary || current.canary.id !== alias.canary.id) return undefined;
    const rolledBack = rollbackAlias(current, new Date(this.now()), 'auto-rollback', verdict.reason);
    try {
      await this.aliases.write(rolledBack, current.revision);
    } catch (error) {
      if (error instanceof AliasConflictError) return undefined;
      throw error;
    }
    const event: AutoRollback = {
      alias: alias.name,
      canary: current.canary.target,
      stable: current.stable,
      reason: verdict.reason!,
      stats,
      revision: rolledBack.revision,
    };
    await this.options.onRollback?.(event);
    return event;
  }
}
