// Aliases in DynamoDB (`ALIAS#<name>`): conditional writes for every change, and in each gateway a
// short-lived copy, so a change reaches every gateway within the cache's lifetime, without a deploy.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { itemKeys, type Store } from '../store/index.js';
import type { AliasRecord } from './aliases.js';

/** Another write reached the alias between our read and our write: nothing was changed. */
export class AliasConflictError extends Error {
  override readonly name = 'AliasConflictError';
}

/** DynamoDB could not be read and this gateway never saw the alias: the request can't be routed. */
export class AliasStoreUnavailableError extends Error {
  override readonly name = 'AliasStoreUnavailableError';
}

export interface AliasStoreOptions {
  /** How long a gateway uses what it read (found or not) before reading again. */
  cacheMs: number;
  now?: () => number;
  /** Told when a read fails and an older copy is used instead. */
  onStale?: (name: string, error: unknown) => void;
}

interface CacheEntry<T> {
  value: T;
  expires: number;
  pending?: Promise<T>;
}

export class AliasStore {
  /** `alias <name>` and `alias index` entries. */
  private readonly entries = new Map<string, CacheEntry<unknown>>();
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: AliasStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The alias as this gateway knows it: at most `cacheMs` old, unless DynamoDB can't be read. */
  async get(name: string): Promise<AliasRecord | undefined> {
    return this.cached(`alias ${name}`, () => this.read(name));
  }

  /** Every alias name (for GET /v1/models), cached like the aliases themselves. */
  async names(): Promise<string[]> {
    return this.cached('alias index', () => this.readNames());
  }

  /** Forgets this gateway's copy, e.g. after it changed the alias itself. */
  forget(name: string): void {
    this.entries.delete(`alias ${name}`);
    this.entries.delete('alias index');
  }

  /** The alias as stored now (a strongly consistent read). */
  async read(name: string): Promise<AliasRecord | undefined> {
    const { Item } = await this.store.client.send(new GetCommand({ TableName: this.store.tableName, Key: itemKeys.alias(name), ConsistentRead: true }));
    return Item ? recordOf(Item) : undefined;
  }

  /** Writes the next state of an alias: one write, conditional on the revision it was computed from. */
  async write(record: AliasRecord, expectedRevision: number): Promise<void> {
    try {
      await this.store.client.send(
        new PutCommand({
          TableName: this.store.tableName,
          Item: { ...itemKeys.alias(record.name), ...record },
          ConditionExpression: '#revision = :expected',
          ExpressionAttributeNames: { '#revision': 'revision' },
          ExpressionAttributeValues: { ':expected': expectedRevision },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw conflict(record.name);
      throw error;
    }
    this.forget(record.name);
  }

  private async readNames(): Promise<string[]> {
    const { Item } = await this.store.client.send(new GetCommand({ TableName: this.store.tableName, Key: itemKeys.aliasIndex() }));
    const names = Item?.names as Set<string> | undefined;
    return names ? [...names].sort() : [];
  }

  /**
   * One read at a time per entry (concurrent requests share it). When the read fails, an older
   * copy is used for another `cacheMs`; with none, the failure goes to the request.
   */
  private async cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const entry = this.entries.get(key) as CacheEntry<T> | undefined;
    if (entry && entry.expires > this.now()) return entry.value;
    if (entry?.pending) return entry.pending;
    const pending = load().then(
      (value) => {
        this.entries.set(key, { value, expires: this.now() + this.options.cacheMs });
        return value;
      },
      (error: unknown) => {
        if (!entry) {
          this.entries.delete(key);
          throw new AliasStoreUnavailableError(`${key} cannot be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        this.options.onStale?.(key, error);
        this.entries.set(key, { value: entry.value, expires: this.now() + this.options.cacheMs });
        return entry.value;
      },
    );
    this.entries.set(key, { value: entry?.value as T, expires: 0, pending });
    return pending;
  }
}

export function conflict(name: string): AliasConflictError {
  return new AliasConflictError(`alias ${name} was changed meanwhile (by another command or an automatic rollback): nothing was written, look again and retry`);
}

function recordOf(item: Record<string, unknown>): AliasRecord {
  const { pk: _pk, sk: _sk, ...record } = item;
  return record as unknown as AliasRecord;
}
