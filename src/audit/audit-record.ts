// An audit record and its place in a hash chain: each record's hash covers its stream, sequence
// number, content and the previous record's hash, so an edit, removal or reordering shows.
import { createHash } from 'node:crypto';

/** What happened. Administrative changes first, then the one record every request leaves. */
export const AUDIT_KINDS = [
  'key_created',
  'key_revoked',
  'key_limits_changed',
  'key_origins_changed',
  'key_settings_changed',
  'alias_changed',
  'canary_changed',
  'promoted',
  'rolled_back',
  'auto_rolled_back',
  'guardrails_changed',
  'request',
] as const;

export type AuditKind = (typeof AUDIT_KINDS)[number];

/** What a caller appends: the kind, who it concerns, and details (never a key or secret). */
export interface AuditEvent {
  kind: AuditKind;
  /** The API key id (key_...) the event concerns, if any. Never the key itself. */
  keyId?: string;
  /** Who made an administrative change (an operator's user name, "cli", "gateway"). */
  actor?: string;
  /** Kind-specific fields: plain JSON (strings, numbers, booleans, null, arrays, objects). */
  data?: Record<string, unknown>;
  /** When it happened; defaults to the moment it is appended. */
  time?: Date;
}

export interface AuditRecord {
  /** The chain this record belongs to, e.g. `2026-12-01#admin`. */
  stream: string;
  /** 1, 2, 3, … within the stream, without gaps. */
  seq: number;
  /** ISO 8601 UTC. */
  time: string;
  kind: AuditKind;
  keyId?: string;
  actor?: string;
  data: Record<string, unknown>;
  /** The hash of record seq − 1 of the same stream; GENESIS_HASH for seq 1. */
  prevHash: string;
  /** SHA-256 hex of the canonical JSON of every field above. */
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level, so the same record always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function recordHash(record: Omit<AuditRecord, 'hash'>): string {
  const { stream, seq, time, kind, keyId, actor, data, prevHash } = record;
  return createHash('sha256').update(canonicalJson({ stream, seq, time, kind, keyId, actor, data, prevHash })).digest('hex');
}

/** The next record of a stream whose last record is `previous` (undefined: the stream is new). */
export function chainRecord(stream: string, previous: { seq: number; hash: string } | undefined, event: AuditEvent, time: Date): AuditRecord {
  const unhashed: Omit<AuditRecord, 'hash'> = {
    stream,
    seq: (previous?.seq ?? 0) + 1,
    time: time.toISOString(),
    kind: event.kind,
    ...(event.keyId === undefined ? {} : { keyId: event.keyId }),
    ...(event.actor === undefined ? {} : { actor: event.actor }),
    data: event.data ?? {},
    prevHash: previous?.hash ?? GENESIS_HASH,
  };
  return { ...unhashed, hash: recordHash(unhashed) };
}

export type ChainProblem =
  | { problem: 'changed'; seq: number }
  | { problem: 'missing'; seq: number }
  | { problem: 'out_of_order'; seq: number }
  | { problem: 'head_mismatch'; seq: number };

/**
 * Checks one stream: records in storage order (by sequence number) and the stream's head (the
 * seq and hash of its last record, kept beside it). Every problem found is reported, first first.
 */
export function verifyChain(records: readonly AuditRecord[], head: { seq: number; hash: string } | undefined): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let expectedSeq = 1;
  let previousHash = GENESIS_HASH;
  for (const record of records) {
    if (recordHash(record) !== record.hash) problems.push({ problem: 'changed', seq: record.seq });
    if (record.seq > expectedSeq) problems.push({ problem: 'missing', seq: expectedSeq });
    else if (record.seq < expectedSeq) problems.push({ problem: 'out_of_order', seq: record.seq });
    else if (record.prevHash !== previousHash) problems.push({ problem: 'out_of_order', seq: record.seq });
    expectedSeq = Math.max(expectedSeq, record.seq + 1);
    previousHash = record.hash;
  }
  const last = records.at(-1);
  // The head catches what the chain alone can't: records cut off the end of a stream.
  if (!head) problems.push({ problem: 'head_mismatch', seq: last?.seq ?? 0 });
  else if (head.seq !== (last?.seq ?? 0) || head.hash !== (last?.hash ?? GENESIS_HASH)) {
    if (head.seq > (last?.seq ?? 0)) problems.push({ problem: 'missing', seq: (last?.seq ?? 0) + 1 });
    else problems.push({ problem: 'head_mismatch', seq: head.seq });
  }
  return problems;
}
