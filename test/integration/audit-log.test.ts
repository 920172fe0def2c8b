// The audit trail on DynamoDB Local: records of every kind, concurrent writers on one stream,
// and verification catching each kind of tampering (changed, removed, reordered, cut off).
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_KINDS, AuditLog, appendAudit, auditKeys, listAudit, verifyAudit, type AuditRecord } from '../../src/audit/index.js';
import type { Store } from '../../src/store/index.js';
import { createTestStore } from '../setup/store.js';

let store: Store;
beforeAll(async () => {
  store = await createTestStore('audit');
});

const DAY = new Date('2026-11-02T10:00:00Z');
const wholeDay = { since: new Date('2026-11-02T00:00:00Z'), until: new Date('2026-11-02T23:59:59Z') };
// "now" for verification: inside the retention period of DAY.
const later = new Date('2026-11-05T00:00:00Z');

async function writeStream(writer: string, count: number, day = DAY): Promise<AuditRecord[]> {
  const log = new AuditLog(store, { writer });
  const written = await Promise.all(
    Array.from({ length: count }, (_, i) => log.append({ kind: 'request', keyId: `key_${writer}`, data: { n: i }, time: new Date(day.getTime() + i) })),
  );
  return written;
}

async function rawRecord(stream: string, seq: number): Promise<Record<string, unknown>> {
  const out = await store.client.send(new GetCommand({ TableName: store.tableName, Key: auditKeys.record(stream, seq) }));
  return out.Item!;
}

async function putRaw(stream: string, seq: number, item: Record<string, unknown>): Promise<void> {
  await store.client.send(new PutCommand({ TableName: store.tableName, Item: { ...item, ...auditKeys.record(stream, seq) } }));
}

function problemsOf(verification: Awaited<ReturnType<typeof verifyAudit>>, stream: string) {
  return verification.streams.find((s) => s.stream === stream)!.problems.map((p) => p.problem);
}

describe('audit log', () => {
  it('writes a record of every kind, chained in order, and lists them by kind, key and time', async () => {
    const time = new Date('2026-11-01T08:00:00Z');
    for (const [i, kind] of AUDIT_KINDS.entries()) {
      await appendAudit(store, { kind, keyId: 'key_kinds0000001', actor: 'test', data: { i }, time: new Date(time.getTime() + i * 1000) });
    }
    const day = { since: new Date('2026-11-01T00:00:00Z'), until: new Date('2026-11-01T23:59:59Z') };
    const all = await listAudit(store, day);
    expect(all.map((r) => r.kind)).toEqual([...AUDIT_KINDS]);
    expect(all.map((r) => r.seq)).toEqual(AUDIT_KINDS.map((_, i) => i + 1));
    expect(all.every((r, i) => i === 0 || r.prevHash === all[i - 1]!.hash)).toBe(true);
    expect((await listAudit(store, { ...day, kinds: ['key_revoked', 'promoted'] })).map((r) => r.kind)).toEqual(['key_revoked', 'promoted']);
    expect(await listAudit(store, { ...day, keyId: 'key_other' })).toEqual([]);
    const window = await listAudit(store, { since: new Date(time.getTime() + 2000), until: new Date(time.getTime() + 3000) });
    expect(window.map((r) => r.kind)).toEqual([AUDIT_KINDS[2], AUDIT_KINDS[3]]);
    expect((await verifyAudit(store, day, later)).ok).toBe(true);
  });

  it('keeps one unbroken chain when several writers append to the same stream at once', async () => {
    const time = new Date('2026-11-03T12:00:00Z');
    // Five "processes" (separate AuditLog objects, as five CLI runs would be), 8 appends each.
    const writers = Array.from({ length: 5 }, () => new AuditLog(store, { writer: 'admin' }));
    await Promise.all(writers.flatMap((w, i) => Array.from({ length: 8 }, (_, j) => w.append({ kind: 'key_created', data: { i, j }, time }))));
    const range = { since: new Date('2026-11-03T00:00:00Z'), until: new Date('2026-11-03T23:59:59Z') };
    const records = await listAudit(store, range);
    expect(records).toHaveLength(40);
    expect(records.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const verification = await verifyAudit(store, range, later);
    expect(verification.ok).toBe(true);
  });

  it('sets every record to expire after the retention period, counted from the end of its day', async () => {
    const log = new AuditLog(store, { writer: 'ttl-check', retentionDays: 30 });
    const record = await log.append({ kind: 'request', time: new Date('2026-11-04T23:00:00Z') });
    const item = await rawRecord(record.stream, 1);
    expect(item.ttl).toBe(Date.parse('2026-11-05T00:00:00Z') / 1000 + 30 * 86_400);
    // Past retention, verification skips the stream instead of judging a half-deleted one.
    const verification = await verifyAudit(store, { since: new Date('2026-11-04T00:00:00Z'), until: new Date('2026-11-04T23:59:59Z') }, new Date('2026-12-06T00:00:00Z'));
    expect(verification.expiredStreams).toBe(1);
  });

  describe('verification', () => {
    it('passes an untouched stream', async () => {
      const [first] = await writeStream('untouched', 5);
      const verification = await verifyAudit(store, wholeDay, later);
      expect(problemsOf(verification, first!.stream)).toEqual([]);
    });

    it('catches a changed record', async () => {
      const [first] = await writeStream('changed', 5);
      const item = await rawRecord(first!.stream, 3);
      const body = JSON.parse(String(item.body));
      body.data.n = 99;
      await putRaw(first!.stream, 3, { ...item, body: JSON.stringify(body) });
      expect(problemsOf(await verifyAudit(store, wholeDay, later), first!.stream)).toContain('changed');
    });

    it('catches a removed record in the middle', async () => {
      const [first] = await writeStream('removed', 5);
      await store.client.send(new DeleteCommand({ TableName: store.tableName, Key: auditKeys.record(first!.stream, 2) }));
      expect(problemsOf(await verifyAudit(store, wholeDay, later), first!.stream)).toContain('missing');
    });

    it('catches records cut off the end', async () => {
      const [first] = await writeStream('truncated', 5);
      for (const seq of [4, 5]) await store.client.send(new DeleteCommand({ TableName: store.tableName, Key: auditKeys.record(first!.stream, seq) }));
      expect(problemsOf(await verifyAudit(store, wholeDay, later), first!.stream)).toEqual(['missing']);
    });

    it('catches two records swapped', async () => {
      const [first] = await writeStream('reordered', 5);
      const two = await rawRecord(first!.stream, 2);
      const three = await rawRecord(first!.stream, 3);
      await putRaw(first!.stream, 2, three);
      await putRaw(first!.stream, 3, two);
      const problems = problemsOf(await verifyAudit(store, wholeDay, later), first!.stream);
      expect(problems.length).toBeGreaterThan(0);
      expect(problems).toContain('out_of_order');
    });

    it('catches a record rewritten with a recomputed hash but an old chain link', async () => {
      const records = await writeStream('rehashed', 4);
      // A forger who recomputes record 2's own hash still breaks record 3's link to it.
      const { recordHash } = await import('../../src/audit/index.js');
      const forged = { ...records[1]!, data: { n: -1 } };
      forged.hash = recordHash(forged);
      const item = await rawRecord(forged.stream, 2);
      await putRaw(forged.stream, 2, { ...item, body: JSON.stringify(forged) });
      expect(problemsOf(await verifyAudit(store, wholeDay, later), forged.stream)).toContain('out_of_order');
    });

    it('catches a whole stream emptied', async () => {
      const [first] = await writeStream('emptied', 3);
      for (const seq of [1, 2, 3]) await store.client.send(new DeleteCommand({ TableName: store.tableName, Key: auditKeys.record(first!.stream, seq) }));
      expect(problemsOf(await verifyAudit(store, wholeDay, later), first!.stream)).toEqual(['missing']);
    });
  });
});
