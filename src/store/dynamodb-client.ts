// DynamoDB document client with fail-fast timeouts, and idempotent creation of the aigw table.

import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { setTimeout as delay } from 'node:timers/promises';
import type { TableSchema } from './table-schema.js';

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface DynamoDbClientOptions {
  /** Empty or undefined: the AWS regional endpoint. */
  endpoint?: string;
  region: string;
  /** Omit to use the AWS default credential chain. */
  credentials?: StaticCredentials;
  /** Longest wait for a TCP connection; at most requestTimeoutMs. */
  connectionTimeoutMs?: number;
  /**
   * Longest a whole call may take, from sending to the parsed answer ([dynamodb] timeout_ms):
   * after it the call fails with a TimeoutError, whatever the server does (stalled, half-open).
   */
  requestTimeoutMs?: number;
  maxAttempts?: number;
}

/** A document client and the table it addresses: what every item-access function takes. */
export interface Store {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
}

/** DynamoDB could not be reached at all (no HTTP answer), as opposed to an error it returned. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class TableSetupError extends Error {
  override readonly name = 'TableSetupError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A DynamoDB call ran past its deadline: no answer came in time (it may still land later). */
export class StoreTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`DynamoDB did not answer within ${timeoutMs} ms`);
  }
}

export function createDynamoDbClient(options: DynamoDbClientOptions): DynamoDBDocumentClient {
  const requestTimeoutMs = options.requestTimeoutMs ?? 3_000;
  const client = new DynamoDBClient({
    region: options.region,
    endpoint: options.endpoint ? options.endpoint : undefined,
    // A copy: the SDK annotates the credentials object it is given.
    credentials: options.credentials && { ...options.credentials },
    // One attempt: a dead endpoint fails in about a second instead of hanging, and a write whose
    // reply was lost is never sent again (limits are ADDs: a retried write that had landed would
    // count twice). Callers fail closed (503) and clients retry.
    maxAttempts: options.maxAttempts ?? 1,
    requestHandler: {
      connectionTimeout: Math.min(options.connectionTimeoutMs ?? 1_000, requestTimeoutMs),
      // Without throwOnRequestTimeout, @smithy/node-http-handler 4.x only logs a warning when
      // requestTimeout passes and keeps waiting for as long as the server stalls.
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  const documents = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return withDeadline(documents, requestTimeoutMs);
}

/**
 * Every call gets an overall deadline: the handler's timeouts cover connecting and waiting for
 * the response headers, not a body that stops halfway; the abort signal tears the request down
 * and the race makes sure the caller hears back in time even if some layer ignores the signal.
 */
function withDeadline(documents: DynamoDBDocumentClient, timeoutMs: number): DynamoDBDocumentClient {
  const send = documents.send.bind(documents) as (command: unknown, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;
  const bounded = async (command: unknown, options?: { abortSignal?: AbortSignal }) => {
    const deadline = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Made only when it happens: an error's stack trace is not free on every call.
        const timedOut = new StoreTimeoutError(timeoutMs);
        deadline.abort(timedOut);
        reject(timedOut);
      }, timeoutMs);
    });
    const abortSignal = options?.abortSignal ? AbortSignal.any([options.abortSignal, deadline.signal]) : deadline.signal;
    try {
      return await Promise.race([send(command, { ...options, abortSignal }), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
  documents.send = bounded as DynamoDBDocumentClient['send'];
  return documents;
}

export function createTableInput(schema: TableSchema): CreateTableCommandInput {
  return {
    TableName: schema.tableName,
    AttributeDefinitions: [
      { AttributeName: schema.partitionKey.name, AttributeType: schema.partitionKey.type },
      { AttributeName: schema.sortKey.name, AttributeType: schema.sortKey.type },
    ],
    KeySchema: [
      { AttributeName: schema.partitionKey.name, KeyType: 'HASH' },
      { AttributeName: schema.sortKey.name, KeyType: 'RANGE' },
    ],
    BillingMode: schema.billingMode,
  };
}

/** True when the error carries no HTTP response: connection refused, timeout, DNS failure. */
export function isUnreachableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === undefined;
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

async function describeStatus(
  client: DynamoDBDocumentClient,
  tableName: string,
): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return out.Table?.TableStatus;
  } catch (error) {
    if (errorName(error) === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

const TABLE_WAIT_MS = 120_000;

async function waitUntilActive(client: DynamoDBDocumentClient, tableName: string): Promise<void> {
  const deadline = Date.now() + TABLE_WAIT_MS;
  for (;;) {
    const status = await describeStatus(client, tableName);
    if (status === 'ACTIVE') return;
    if (Date.now() > deadline) {
      throw new TableSetupError(
        `table ${tableName} is not ACTIVE after ${TABLE_WAIT_MS / 1000} s (status ${status ?? 'missing'})`,
      );
    }
    await delay(250);
  }
}

async function ensureTtl(client: DynamoDBDocumentClient, schema: TableSchema): Promise<void> {
  const out = await client.send(new DescribeTimeToLiveCommand({ TableName: schema.tableName }));
  const status = out.TimeToLiveDescription?.TimeToLiveStatus;
  if (status === 'ENABLED' || status === 'ENABLING') return;
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: schema.tableName,
        TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true },
      }),
    );
  } catch (error) {
    // A concurrent ensureTable enabled it between our describe and update.
    const alreadyOn =
      errorName(error) === 'ValidationException' && /already enabled/i.test((error as Error).message);
    if (!alreadyOn) throw error;
  }
}

/**
 * Creates the table when missing and waits until it is ACTIVE, then turns TTL on.
 * Idempotent and safe to race: a concurrent creator's ResourceInUseException counts as success.
 */
export async function ensureTable(client: DynamoDBDocumentClient, schema: TableSchema): Promise<void> {
  try {
    const status = await describeStatus(client, schema.tableName);
    if (status === undefined) {
      try {
        await client.send(new CreateTableCommand(createTableInput(schema)));
      } catch (error) {
        if (errorName(error) !== 'ResourceInUseException') throw error;
      }
    }
    if (status !== 'ACTIVE') await waitUntilActive(client, schema.tableName);
    await ensureTtl(client, schema);
  } catch (error) {
    if (error instanceof TableSetupError) throw error;
    const endpoint = await describeEndpoint(client);
    if (isUnreachableError(error)) {
      throw new StoreUnavailableError(
        `DynamoDB is unreachable at ${endpoint}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    throw new TableSetupError(
      `could not set up table ${schema.tableName} at ${endpoint}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

async function describeEndpoint(client: DynamoDBDocumentClient): Promise<string> {
  try {
    const endpoint = await client.config.endpoint?.();
    if (endpoint) {
      const port = endpoint.port ? `:${endpoint.port}` : '';
      return `${endpoint.protocol}//${endpoint.hostname}${port}`;
    }
    return `the regional endpoint of ${await client.config.region()}`;
  } catch {
    return 'the configured endpoint';
  }
}
