// Reading the audit trail back: `aigw audit list` (filtered by key, kind and time) and
// `aigw audit verify` (every stream's hash chain and head, day by day).
import type { Store } from '../store/index.js';
import { daysBetween, readAuditDay } from './audit-log.js';
import { verifyChain, type AuditKind, type AuditRecord, type ChainProblem } from './audit-record.js';

export interface AuditRange {
  since: Date;
  until: Date;
}

export interface AuditFilter extends AuditRange {
  keyId?: string;
  kinds?: readonly AuditKind[];
}

/** Matching records of every stream in the range, oldest first. */
export async function listAudit(store: Store, filter: AuditFilter): Promise<AuditRecord[]> {
  const found: AuditRecord[] = [];
  for (const day of daysBetween(filter.since, filter.until)) {
    for (const stream of await readAuditDay(store, day)) {
      if (stream.expired) continue;
      for (const record of stream.records) {
        const time = Date.parse(record.time);
        if (time < filter.since.getTime() || time > filter.until.getTime()) continue;
        if (filter.keyId !== undefined && record.keyId !== filter.keyId) continue;
        if (filter.kinds?.length && !filter.kinds.includes(record.kind)) continue;
        found.push(record);
      }
    }
  }
  return found.sort((a, b) => a.time.localeCompare(b.time) || a.stream.localeCompare(b.stream) || a.seq - b.seq);
}

export interface StreamVerdict {
  stream: string;
  records: number;
  problems: ChainProblem[];
}

export interface AuditVerification {
  ok: boolean;
  streams: StreamVerdict[];
  /** Streams past their retention, waiting for DynamoDB's TTL to delete them: not judged. */
  expiredStreams: number;
}

/** Checks every stream of every day in the range. */
export async function verifyAudit(store: Store, range: AuditRange, now: Date = new Date()): Promise<AuditVerification> {
  const streams: StreamVerdict[] = [];
  let expiredStreams = 0;
  for (const day of daysBetween(range.since, range.until)) {
    for (const stream of await readAuditDay(store, day, now)) {
      if (stream.expired) {
        expiredStreams++;
        continue;
      }
      // A record carries its stream's name and seq under its hash: one copied in from elsewhere is "changed".
      const problems = verifyChain(stream.records, stream.head);
      stream.records.forEach((record, index) => {
        if (record.stream !== stream.stream && !problems.some((p) => p.seq === record.seq)) problems.push({ problem: 'changed', seq: record.seq || index + 1 });
      });
      streams.push({ stream: stream.stream, records: stream.records.length, problems });
    }
  }
  return { ok: streams.every((s) => s.problems.length === 0), streams, expiredStreams };
}
