// Audit records in DynamoDB. Each writer appends to its own stream per UTC day (`<day>#<writer>`):
// records AUDIT#<stream>/R#<seq>, the stream's head AUDIT#<stream>/HEAD (seq and hash of its last
// record) and AUDITDAY#<day>/<stream> so a day's streams can be found. A batch of records and
// the head move in one transaction conditioned on the head's old seq, so writers sharing a stream
// (two CLI runs, two gateway instances) can never fork or overwrite it: the loser re-reads and retries.
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, TransactWriteCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { GroupCommit, type Store } from '../store/index.js';
import { chainRecord, type AuditEvent, type AuditRecord } from './audit-record.js';

const RECORD_PREFIX = 'R#';
const HEAD_SK = 'HEAD';
const MAX_BATCH = 25;
const MAX_CONFLICT_RETRIES = 8;

export const DEFAULT_AUDIT_RETENTION_DAYS = 180;

export const auditKeys = {
  record: (stream: string, seq: number) => ({ pk: `AUDIT#${stream}`, sk: `${RECORD_PREFIX}${String(seq).padStart(12, '0')}` }),
  head: (stream: string) => ({ pk: `AUDIT#${stream}`, sk: HEAD_SK }),
  day: (day: string, stream: string) => ({ pk: `AUDITDAY#${day}`, sk: stream }),
};

export interface AuditLogOptions {
  /** Names this writer's streams: "admin" for administrative changes, a gateway instance's id for requests. */
  writer: string;
  /** Records are deleted (DynamoDB TTL) this many days after the end of their stream's day. */
  retentionDays?: number;
  now?: () => Date;
}

interface Pending {
  event: AuditEvent;
  time: Date;
}

type Head = { seq: number; hash: string } | undefined;

/** Appends records in order; appends made while a write is under way go together in the next one. */
export class AuditLog {
  private readonly retentionDays: number;
  private readonly now: () => Date;
  private readonly heads = new Map<string, Head>();
  private readonly writes: GroupCommit<Pending, AuditRecord>;

  constructor(
    private readonly store: Store,
    private readonly options: AuditLogOptions,
  ) {
    if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(options.writer)) throw new Error(`audit writer name: expected 1 to 100 letters, digits, "_.:-", got "${options.writer}"`);
    this.retentionDays = options.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS;
    this.now = options.now ?? (() => new Date());
    this.writes = new GroupCommit({
      // One transaction holds one stream's records: those queued for the first one's stream, at most MAX_BATCH.
      batchSize: (queued) => {
        const stream = streamName(queued[0]!.time, options.writer);
        let size = 1;
        while (size < Math.min(MAX_BATCH, queued.length) && streamName(queued[size]!.time, options.writer) === stream) size++;
        return size;
      },
      write: async (batch) => {
        const stream = streamName(batch[0]!.time, options.writer);
        try {
          return await this.writeBatch(stream, batch);
        } catch (error) {
          this.heads.delete(stream);
          throw error;
        }
      },
    });
  }

  append(event: AuditEvent): Promise<AuditRecord> {
    return this.writes.add({ event, time: event.time ?? this.now() });
  }

  /** Resolves once everything appended so far is written (or has failed). */
  flush(): Promise<void> {
    return this.writes.flush();
  }

  private async writeBatch(stream: string, batch: Pending[]): Promise<AuditRecord[]> {
    const ttl = expiryOf(stream, this.retentionDays);
    for (let attempt = 0; ; attempt++) {
      const head = this.heads.has(stream) ? this.heads.get(stream) : await readHead(this.store, stream);
      const records: AuditRecord[] = [];
      for (const pending of batch) records.push(chainRecord(stream, records.at(-1) ?? head, pending.event, pending.time));
      const last = records.at(-1)!;
      const { tableName } = this.store;
      const headWrite = head
        ? {
            Update: {
              TableName: tableName,
              Key: auditKeys.head(stream),
              UpdateExpression: 'SET seq = :seq, #hash = :hash',
              ConditionExpression: 'seq = :previous',
              ExpressionAttributeNames: { '#hash': 'hash' },
              ExpressionAttributeValues: { ':seq': last.seq, ':hash': last.hash, ':previous': head.seq },
            },
          }
        : { Put: { TableName: tableName, Item: { ...auditKeys.head(stream), seq: last.seq, hash: last.hash, ttl }, ConditionExpression: 'attribute_not_exists(pk)' } };
      const items = [
        ...records.map((record) => ({
          Put: {
            TableName: tableName,
            // The record as hashed, as one string: nothing DynamoDB does to numbers or maps can change it.
            Item: { ...auditKeys.record(stream, record.seq), body: JSON.stringify(record), ttl },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        })),
        headWrite,
        ...(head ? [] : [{ Put: { TableName: tableName, Item: { ...auditKeys.day(stream.slice(0, 10), stream), ttl } } }]),
      ];
      try {
        await this.store.client.send(new TransactWriteCommand({ TransactItems: items }));
        this.heads.set(stream, { seq: last.seq, hash: last.hash });
        return records;
      } catch (error) {
        const conflict = error instanceof TransactionCanceledException && error.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed');
        if (!conflict || attempt >= MAX_CONFLICT_RETRIES) throw error;
        // Another writer moved the stream on: start again from its new head.
        this.heads.delete(stream);
      }
    }
  }
}

/** Appends one administrative record to today's shared `admin` stream and waits for it. */
export async function appendAudit(store: Store, event: AuditEvent, options: Omit<AuditLogOptions, 'writer'> = {}): Promise<AuditRecord> {
  return new AuditLog(store, { ...options, writer: 'admin' }).append(event);
}

export function streamName(time: Date, writer: string): string {
  return `${time.toISOString().slice(0, 10)}#${writer}`;
}

/** A stream's records all expire together: retention counted from the end of its day. */
function expiryOf(stream: string, retentionDays: number): number {
  const dayEnd = Date.parse(`${stream.slice(0, 10)}T00:00:00Z`) / 1000 + 86_400;
  return dayEnd + retentionDays * 86_400;
}

async function readHead(store: Store, stream: string): Promise<Head> {
  const out = await store.client.send(new GetCommand({ TableName: store.tableName, Key: auditKeys.head(stream), ConsistentRead: true }));
  return out.Item ? { seq: Number(out.Item.seq), hash: String(out.Item.hash) } : undefined;
}

/** One stream as stored: its records by sequence number, its head, and whether TTL has passed. */
export interface StoredStream {
  stream: string;
  records: AuditRecord[];
  head: Head;
  expired: boolean;
}

/** Every stream of one UTC day (`YYYY-MM-DD`). */
export async function readAuditDay(store: Store, day: string, now: Date = new Date()): Promise<StoredStream[]> {
  const names: { stream: string; ttl: number }[] = [];
  const pages = paginateQuery(
    { client: store.client },
    { TableName: store.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `AUDITDAY#${day}` }, ConsistentRead: true },
  );
  for await (const page of pages) for (const item of page.Items ?? []) names.push({ stream: String(item.sk), ttl: Number(item.ttl) });
  const streams: StoredStream[] = [];
  for (const { stream, ttl } of names) {
    const records: AuditRecord[] = [];
    let head: Head;
    const items = paginateQuery(
      { client: store.client },
      { TableName: store.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `AUDIT#${stream}` }, ConsistentRead: true },
    );
    for await (const page of items) {
      for (const item of page.Items ?? []) {
        if (item.sk === HEAD_SK) head = { seq: Number(item.seq), hash: String(item.hash) };
        else records.push(parseRecord(item.body));
      }
    }
    // TTL deletion lags by days and goes item by item: an expired stream is skipped, not judged.
    streams.push({ stream, records, head, expired: ttl <= now.getTime() / 1000 });
  }
  return streams;
}

function parseRecord(body: unknown): AuditRecord {
  try {
    return JSON.parse(String(body)) as AuditRecord;
  } catch {
    // An unreadable body is a changed record: verification flags it by its hash.
    return { stream: '', seq: -1, time: '', kind: 'request', data: {}, prevHash: '', hash: 'unreadable' };
  }
}

/** The UTC days from `since` to `until`, inclusive. */
export function daysBetween(since: Date, until: Date): string[] {
  const days: string[] = [];
  for (let t = Date.parse(since.toISOString().slice(0, 10)); t <= until.getTime(); t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

