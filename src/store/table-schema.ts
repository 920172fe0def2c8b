// The one definition of aigw's DynamoDB table, as plain data: `ensureTable` creates it locally
// and the CDK stack declares it from the same object, so the two can never drift apart.

export const DEFAULT_TABLE_NAME = 'aigw';

export interface TableSchema {
  readonly tableName: string;
  readonly partitionKey: { readonly name: 'pk'; readonly type: 'S' };
  readonly sortKey: { readonly name: 'sk'; readonly type: 'S' };
  /** Epoch seconds; DynamoDB deletes expired items lazily (up to days late), so readers filter too. */
  readonly ttlAttribute: 'ttl';
  readonly billingMode: 'PAY_PER_REQUEST';
}

export function tableSchema(tableName: string = DEFAULT_TABLE_NAME): TableSchema {
  return {
    tableName,
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    ttlAttribute: 'ttl',
    billingMode: 'PAY_PER_REQUEST',
  };
}

export interface ItemKey {
  pk: string;
  sk: string;
}

/** Partition key prefixes, one per item family (see DESIGN.md "Data in DynamoDB"). */
export const KEY_PREFIX = {
  apiKey: 'KEY#',
  keyLimits: 'LIMITS#KEY#',
  modelLimits: 'LIMITS#MODEL#',
  cache: 'CACHE#',
  alias: 'ALIAS#',
  usage: 'USAGE#',
} as const;

// Every family has one item per partition, under a fixed sort key.
export const itemKeys = {
  /** API key record, addressed by the SHA-256 hex of the key (the key itself is never stored). */
  apiKey: (sha256Hex: string): ItemKey => ({ pk: `${KEY_PREFIX.apiKey}${sha256Hex}`, sk: 'KEY' }),
  /**
   * Everything admission counts for one key, in one item: rate windows, in-flight requests,
   * budget reservations and spend. One item is what lets admission be one conditional write.
   */
  keyLimits: (keyId: string): ItemKey => ({ pk: `${KEY_PREFIX.keyLimits}${keyId}`, sk: 'LIMITS' }),
  /** In-flight requests of one model across all keys, for a per-model concurrency cap. */
  modelLimits: (modelId: string): ItemKey => ({ pk: `${KEY_PREFIX.modelLimits}${modelId}`, sk: 'LIMITS' }),
  /** Cached response by canonical request hash. */
  cache: (hash: string): ItemKey => ({ pk: `${KEY_PREFIX.cache}${hash}`, sk: 'CACHE' }),
  /** Which model versions serve a model name: stable, canary and weight (src/routing/aliases.ts). */
  alias: (model: string): ItemKey => ({ pk: `${KEY_PREFIX.alias}${model}`, sk: 'ALIAS' }),
  /** The names of every alias, for GET /v1/models (an alias name is never empty, so this pk is free). */
  aliasIndex: (): ItemKey => ({ pk: KEY_PREFIX.alias, sk: 'INDEX' }),
  /** One time bucket of a canary's health counters (requests, errors, time to first token per role). */
  aliasHealth: (model: string, canaryId: string, bucketStartSeconds: number): ItemKey => ({
    pk: `${KEY_PREFIX.alias}${model}`,
    sk: `HEALTH#${canaryId}#${String(bucketStartSeconds).padStart(12, '0')}`,
  }),
  /** Usage roll-up of a key for one day (`YYYY-MM-DD`). */
  usage: (keyId: string, day: string): ItemKey => ({
    pk: `${KEY_PREFIX.usage}${keyId}#${day}`,
    sk: 'USAGE',
  }),
};
