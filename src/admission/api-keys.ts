// API keys: `aigw-` + 40 random base62 characters. Only the key's SHA-256 is stored (item
// KEY#<sha256>), so a leaked table can't be replayed as keys; the plaintext is shown once.

import { createHash, randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { KEY_PREFIX, itemKeys, type Store } from '../store/index.js';
import { defaultApiKeyCache, type ApiKeyCacheOption } from './api-key-cache.js';
import { LIMIT_NAMES, type Limits } from './limits.js';

export const API_KEY_PREFIX = 'aigw-';
const API_KEY_BODY_LENGTH = 40;
const KEY_ID_PREFIX = 'key_';
const KEY_ID_BODY_LENGTH = 12;
const API_KEY_PATTERN = /^aigw-[0-9A-Za-z]{40}$/;
const KEY_ID_PATTERN = /^key_[0-9A-Za-z]{12}$/;
const PLAN_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_NAME_LENGTH = 200;

export type ApiKeyStatus = 'active' | 'revoked';

export interface ApiKeyRecord {
  /** Public id, safe to show and log. */
  readonly keyId: string;
  readonly name: string;
  readonly status: ApiKeyStatus;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly revokedAt?: string;
  readonly plan: string;
  /** Model names this key may use; empty means all. */
  readonly allowedModels: readonly string[];
  /** This key's own limits, on top of its plan's. */
  readonly limits: Readonly<Limits>;
  /** Browser origins this key may be used from; empty means any origin the gateway allows. */
  readonly allowedOrigins: readonly string[];
  /** Guardrail rules this key runs under, instead of its plan's; absent: the plan's. */
  readonly guardrails?: readonly string[];
  /** Prompts and completions of this key's requests go into logs and audit records. */
  readonly logPrompts?: boolean;
}

export interface CreateApiKeyInput {
  name: string;
  plan?: string;
  allowedModels?: readonly string[];
  limits?: Limits;
  allowedOrigins?: readonly string[];
  guardrails?: readonly string[];
  logPrompts?: boolean;
}

export class ApiKeyNotFoundError extends Error {
  override readonly name = 'ApiKeyNotFoundError';
  constructor(readonly keyId: string) {
    super(`no API key with id ${keyId}`);
  }
}

export class ApiKeyInputError extends Error {
  override readonly name = 'ApiKeyInputError';
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Uniform base62: bytes of 248 and above are dropped, as 248 = 4 × 62 keeps `% 62` unbiased. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBase62(API_KEY_BODY_LENGTH)}`;
}

export function isWellFormedApiKey(presented: string): boolean {
  return API_KEY_PATTERN.test(presented);
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function toRecord(item: Record<string, unknown>): ApiKeyRecord {
  const record: ApiKeyRecord = {
    keyId: String(item.keyId),
    name: String(item.name),
    status: item.status === 'active' ? 'active' : 'revoked',
    createdAt: String(item.createdAt),
    ...(typeof item.revokedAt === 'string' ? { revokedAt: item.revokedAt } : {}),
    plan: String(item.plan),
    allowedModels: Object.freeze(Array.isArray(item.allowedModels) ? item.allowedModels.map(String) : []),
    limits: Object.freeze(limitsOf(item.limits)),
    allowedOrigins: Object.freeze(Array.isArray(item.allowedOrigins) ? item.allowedOrigins.map(String) : []),
    ...(Array.isArray(item.guardrails) ? { guardrails: Object.freeze(item.guardrails.map(String)) } : {}),
    ...(item.logPrompts === true ? { logPrompts: true } : {}),
  };
  return Object.freeze(record);
}

/** Only known limit names with non-negative integer values survive a round trip through the table. */
function limitsOf(value: unknown): Limits {
  if (typeof value !== 'object' || value === null) return {};
  const limits: Limits = {};
  for (const name of LIMIT_NAMES) {
    const limit = (value as Record<string, unknown>)[name];
    if (Number.isSafeInteger(limit) && (limit as number) >= 0) limits[name] = limit as number;
  }
  return limits;
}

function validateGuardrails(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((r) => typeof r !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(r))) {
    throw new ApiKeyInputError('guardrails: expected a list of guardrail rule names');
  }
  return [...new Set(value as string[])];
}

function validateInput(input: CreateApiKeyInput): Required<Omit<CreateApiKeyInput, 'guardrails' | 'logPrompts'>> & Pick<CreateApiKeyInput, 'guardrails' | 'logPrompts'> {
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (name === '' || name.length > MAX_NAME_LENGTH) {
    throw new ApiKeyInputError(`name: expected 1 to ${MAX_NAME_LENGTH} characters`);
  }
  const plan = input.plan ?? 'free';
  if (!PLAN_PATTERN.test(plan)) {
    throw new ApiKeyInputError('plan: expected 1 to 64 letters, digits, "_" or "-"');
  }
  const models = input.allowedModels ?? [];
  if (!Array.isArray(models) || models.some((m) => typeof m !== 'string' || m.trim() === '')) {
    throw new ApiKeyInputError('allowedModels: expected a list of model names');
  }
  const limits = input.limits ?? {};
  for (const [limit, value] of Object.entries(limits)) {
    if (!(LIMIT_NAMES as readonly string[]).includes(limit) || (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))) {
      throw new ApiKeyInputError(`limits.${limit}: expected a known limit with a whole number >= 0`);
    }
  }
  const origins = input.allowedOrigins ?? [];
  if (!Array.isArray(origins) || origins.some((o) => typeof o !== 'string' || !/^(\*|https?:\/\/[^/\s]+)$/.test(o))) {
    throw new ApiKeyInputError('allowedOrigins: expected origins such as "https://app.example.com"');
  }
  const guardrails = validateGuardrails(input.guardrails);
  return {
    name,
    plan,
    allowedModels: [...new Set(models.map((m) => m.trim()))],
    limits: limitsOf(limits),
    allowedOrigins: [...new Set(origins)],
    ...(guardrails ? { guardrails } : {}),
    ...(input.logPrompts ? { logPrompts: true } : {}),
  };
}

/** Creates a key; the plaintext `key` is returned here once and never stored or logged. */
export async function createApiKey(
  store: Store,
  input: CreateApiKeyInput,
): Promise<{ key: string; record: ApiKeyRecord }> {
  const { name, plan, allowedModels, limits, allowedOrigins, guardrails, logPrompts } = validateInput(input);
  const key = generateApiKey();
  const record = toRecord({
    keyId: `${KEY_ID_PREFIX}${randomBase62(KEY_ID_BODY_LENGTH)}`,
    name,
    status: 'active',
    createdAt: new Date().toISOString(),
    plan,
    allowedModels,
    limits,
    allowedOrigins,
    guardrails,
    logPrompts,
  });
  await store.client.send(
    new PutCommand({
      TableName: store.tableName,
      Item: { ...itemKeys.apiKey(hashApiKey(key)), ...record, allowedModels: [...record.allowedModels], limits: { ...record.limits }, allowedOrigins: [...record.allowedOrigins], ...(record.guardrails ? { guardrails: [...record.guardrails] } : {}) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return { key, record };
}

// Listing and lookup by id scan the whole table. That is fine for admin commands run by hand,
// and it spares a second item or GSI per key; the request path only ever reads by hash.
async function scanKeyItems(store: Store, keyId?: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  const pages = paginateScan(
    { client: store.client },
    {
      TableName: store.tableName,
      FilterExpression:
        keyId === undefined ? 'begins_with(pk, :prefix)' : 'begins_with(pk, :prefix) AND keyId = :keyId',
      ExpressionAttributeValues: {
        ':prefix': KEY_PREFIX.apiKey,
        ...(keyId === undefined ? {} : { ':keyId': keyId }),
      },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) items.push(...(page.Items ?? []));
  return items;
}

async function keyItemById(store: Store, keyId: string): Promise<Record<string, unknown>> {
  if (!KEY_ID_PATTERN.test(keyId)) throw new ApiKeyNotFoundError(keyId);
  const [item] = await scanKeyItems(store, keyId);
  if (item === undefined) throw new ApiKeyNotFoundError(keyId);
  return item;
}

/** All keys, oldest first. */
export async function listApiKeys(store: Store): Promise<ApiKeyRecord[]> {
  const records = (await scanKeyItems(store)).map(toRecord);
  return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId));
}

/**
 * Marks a key revoked (idempotent) and drops it from this instance's cache, so it stops working
 * here at once and on other instances within their cache TTL.
 */
export async function revokeApiKey(
  store: Store,
  keyId: string,
  options: ApiKeyCacheOption = {},
): Promise<ApiKeyRecord> {
  const item = await keyItemById(store, keyId);
  return updateKeyItem(store, item, keyId, options, {
    UpdateExpression: 'SET #status = :revoked, revokedAt = if_not_exists(revokedAt, :now)',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':revoked': 'revoked', ':now': new Date().toISOString() },
  });
}

/**
 * Updates a key's record (still there, still this key's) and returns it as now stored; the
 * record leaves this instance's cache either way, so the change bites here at once.
 */
async function updateKeyItem(
  store: Store,
  item: Record<string, unknown>,
  keyId: string,
  options: ApiKeyCacheOption,
  update: { UpdateExpression: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues: Record<string, unknown> },
): Promise<ApiKeyRecord> {
  const pk = String(item.pk);
  try {
    const out = await store.client.send(
      new UpdateCommand({
        TableName: store.tableName,
        Key: { pk, sk: item.sk },
        ...update,
        ConditionExpression: 'attribute_exists(pk) AND keyId = :keyId',
        ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':keyId': keyId },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toRecord(out.Attributes ?? {});
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) throw new ApiKeyNotFoundError(keyId);
    throw error;
  } finally {
    (options.cache ?? defaultApiKeyCache).delete(store.tableName, pk.slice(KEY_PREFIX.apiKey.length));
  }
}

export interface ApiKeyChanges {
  limits?: Limits;
  allowedOrigins?: readonly string[];
  /** null: back to the plan's rules. */
  guardrails?: readonly string[] | null;
  logPrompts?: boolean;
}

/**
 * Changes a key's limits (replacing its overrides), origins, guardrail rules or prompt logging,
 * and returns the record before and after (for the audit trail). Other instances see the change
 * within their key cache TTL, like a revocation.
 */
export async function updateApiKey(
  store: Store,
  keyId: string,
  changes: ApiKeyChanges,
  options: ApiKeyCacheOption = {},
): Promise<{ before: ApiKeyRecord; after: ApiKeyRecord }> {
  const item = await keyItemById(store, keyId);
  const before = toRecord(item);
  const checked = validateInput({
    name: before.name,
    plan: before.plan,
    limits: changes.limits ?? { ...before.limits },
    allowedOrigins: changes.allowedOrigins ?? before.allowedOrigins,
    guardrails: changes.guardrails === null ? undefined : (changes.guardrails ?? before.guardrails),
  });
  const sets = ['limits = :limits', 'allowedOrigins = :origins'];
  const removes: string[] = [];
  const values: Record<string, unknown> = { ':limits': checked.limits, ':origins': checked.allowedOrigins, ':keyId': keyId };
  if (checked.guardrails) {
    sets.push('guardrails = :guardrails');
    values[':guardrails'] = checked.guardrails;
  } else removes.push('guardrails');
  const logPrompts = changes.logPrompts ?? before.logPrompts ?? false;
  if (logPrompts) {
    sets.push('logPrompts = :logPrompts');
    values[':logPrompts'] = true;
  } else removes.push('logPrompts');
  const after = await updateKeyItem(store, item, keyId, options, {
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ExpressionAttributeValues: values,
  });
  return { before, after };
}

/**
 * The active key record for a presented key, or null for a malformed, unknown or revoked key.
 * Lookups go by the key's hash; results are cached (see ApiKeyCache for how fast revocation bites).
 */
export async function authenticateApiKey(
  store: Store,
  presentedKey: string,
  options: ApiKeyCacheOption = {},
): Promise<ApiKeyRecord | null> {
  if (typeof presentedKey !== 'string' || !isWellFormedApiKey(presentedKey)) return null;
  const cache = options.cache ?? defaultApiKeyCache;
  const keyHash = hashApiKey(presentedKey);
  let record = cache.get(store.tableName, keyHash);
  if (record === undefined) {
    const out = await store.client.send(
      new GetCommand({ TableName: store.tableName, Key: itemKeys.apiKey(keyHash), ConsistentRead: true }),
    );
    record = out.Item ? toRecord(out.Item) : null;
    cache.set(store.tableName, keyHash, record);
  }
  return record?.status === 'active' ? record : null;
}
