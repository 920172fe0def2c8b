// The usage roll-up for reports (`aigw usage`): per key and UTC day (item USAGE#<keyId>#<day>),
// requests served, cache hits, tokens, cost and admission's rejections by reason; the served
// requests also per model version (attributes v#<name@version>#<counter>, on the same item).
import { BatchGetCommand, UpdateCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { GroupCommit, KEY_PREFIX, itemKeys, type Store } from '../store/index.js';
import type { RejectionReason } from './admission-errors.js';
import { unavailable, updateInput } from './limits-item.js';
import { retryWithin } from './settlement.js';

/** What one request adds to its key's day. */
export type UsageEvent =
  | { kind: 'generated'; promptTokens: number; completionTokens: number; costMicros: number; version?: string }
  | { kind: 'cache_hit'; version?: string }
  | { kind: 'rejected'; reason: RejectionReason };

/** One model version's share of a key's day. */
export interface VersionUsage {
  requests: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
}

export interface DailyUsage {
  keyId: string;
  /** UTC, YYYY-MM-DD. */
  day: string;
  /** Requests answered: generated plus cache hits. */
  requests: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
  rejections: Partial<Record<RejectionReason, number>>;
  /** Served requests by the version that served them (a reply continued by a fallback counts for the one that began it). */
  byVersion: Record<string, VersionUsage>;
}

const REJECTED_PREFIX = 'rejected_';
const VERSION_PREFIX = 'v#';
const VERSION_COUNTERS: readonly (keyof VersionUsage)[] = ['requests', 'cacheHits', 'promptTokens', 'completionTokens', 'costMicros'];

/** The counters one request adds to its key's day. */
export function usageCounts(event: UsageEvent): Record<string, number> {
  const counts: Record<string, number> =
    event.kind === 'generated'
      ? { requests: 1, promptTokens: event.promptTokens, completionTokens: event.completionTokens, costMicros: event.costMicros }
      : event.kind === 'cache_hit'
        ? { requests: 1, cacheHits: 1 }
        : { [`${REJECTED_PREFIX}${event.reason}`]: 1 };
  if (event.kind !== 'rejected' && event.version) {
    for (const [counter, value] of Object.entries(counts)) counts[`${VERSION_PREFIX}${event.version}#${counter}`] = value;
  }
  return counts;
}

interface UsageAdd {
  keyId: string;
  day: string;
  counts: Record<string, number>;
}

/**
 * Adds requests to their keys' days. Requests that finish while a roll-up write is under way are
 * summed into the next one (group commit), so under load one UpdateItem per key and day carries
 * many requests; alone, a request is written at once. Each write is retried within `budgetMs`: a
 * counter ADD retried after an answer that was lost could count twice (the roll-up is a report,
 * and errs toward counting).
 */
export class UsageRollup {
  private readonly writes: GroupCommit<UsageAdd, unknown>;

  constructor(store: Store, budgetMs: number) {
    this.writes = new GroupCommit({
      write: async (adds) => {
        const sums = new Map<string, UsageAdd>();
        for (const add of adds) {
          const id = `${add.keyId}\u0000${add.day}`;
          const sum = sums.get(id) ?? { keyId: add.keyId, day: add.day, counts: {} };
          for (const [counter, value] of Object.entries(add.counts)) sum.counts[counter] = (sum.counts[counter] ?? 0) + value;
          sums.set(id, sum);
        }
        // One outcome per item: a caller hears of its own item's failure only.
        const outcomes = new Map<string, unknown>();
        await Promise.all(
          [...sums].map(async ([id, sum]) => {
            const key = itemKeys.usage(sum.keyId, sum.day);
            try {
              await retryWithin(budgetMs, () => store.client.send(new UpdateCommand(updateInput(store, key, sum.counts, []))).catch((error) => Promise.reject(unavailable(error))));
            } catch (error) {
              outcomes.set(id, error ?? new Error('usage roll-up write failed'));
            }
          }),
        );
        return adds.map((add) => outcomes.get(`${add.keyId}\u0000${add.day}`));
      },
    });
  }

  /** Adds one request to its key's day; rejects when the write holding it failed within the budget. */
  async add(keyId: string, day: string, event: UsageEvent): Promise<void> {
    const failure = await this.writes.add({ keyId, day, counts: usageCounts(event) });
    if (failure !== undefined) throw failure;
  }
}

/** Each UTC day from `from` to `to`, both included (YYYY-MM-DD). */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/**
 * The roll-up between two UTC days (both included), sorted by day then key: one key's days are read
 * by their keys; all keys' need a scan of the USAGE# items (a report, not a request path).
 */
export async function readUsage(store: Store, range: { from: string; to: string; keyId?: string }): Promise<DailyUsage[]> {
  const items: Record<string, unknown>[] = [];
  if (range.keyId) {
    const keys = daysBetween(range.from, range.to).map((day) => itemKeys.usage(range.keyId!, day));
    for (let i = 0; i < keys.length; i += 100) {
      let request: Record<string, { Keys: Record<string, unknown>[] }> | undefined = { [store.tableName]: { Keys: keys.slice(i, i + 100).map((k) => ({ ...k })) } };
      while (request && Object.keys(request).length > 0) {
        const out = await store.client.send(new BatchGetCommand({ RequestItems: request }));
        items.push(...(out.Responses?.[store.tableName] ?? []));
        request = out.UnprocessedKeys as typeof request;
      }
    }
  } else {
    const pages = paginateScan(
      { client: store.client },
      {
        TableName: store.tableName,
        FilterExpression: 'begins_with(pk, :usage)',
        ExpressionAttributeValues: { ':usage': KEY_PREFIX.usage },
      },
    );
    for await (const page of pages) items.push(...(page.Items ?? []));
  }
  return items
    .map(dailyUsage)
    .filter((u): u is DailyUsage => u !== undefined && u.day >= range.from && u.day <= range.to)
    .sort((a, b) => a.day.localeCompare(b.day) || a.keyId.localeCompare(b.keyId));
}

function dailyUsage(item: Record<string, unknown>): DailyUsage | undefined {
  const match = /^USAGE#(.+)#(\d{4}-\d{2}-\d{2})$/.exec(String(item.pk));
  if (!match) return undefined;
  const count = (name: string) => (typeof item[name] === 'number' ? (item[name] as number) : 0);
  const rejections: DailyUsage['rejections'] = {};
  const byVersion: DailyUsage['byVersion'] = {};
  for (const [name, value] of Object.entries(item)) {
    if (typeof value !== 'number') continue;
    if (name.startsWith(REJECTED_PREFIX)) rejections[name.slice(REJECTED_PREFIX.length) as RejectionReason] = value;
    if (name.startsWith(VERSION_PREFIX)) {
      // v#<name@version>#<counter>: the version may itself hold '#', the counter never does.
      const cut = name.lastIndexOf('#');
      const counter = name.slice(cut + 1) as keyof VersionUsage;
      if (!VERSION_COUNTERS.includes(counter)) continue;
      const version = name.slice(VERSION_PREFIX.length, cut);
      byVersion[version] ??= { requests: 0, cacheHits: 0, promptTokens: 0, completionTokens: 0, costMicros: 0 };
      byVersion[version][counter] = value;
    }
  }
  return {
    keyId: match[1]!,
    day: match[2]!,
    requests: count('requests'),
    cacheHits: count('cacheHits'),
    promptTokens: count('promptTokens'),
    completionTokens: count('completionTokens'),
    costMicros: count('costMicros'),
    rejections,
    byVersion,
  };
}
