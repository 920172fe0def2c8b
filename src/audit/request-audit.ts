// The audit record every request leaves, made from its finished log line: ids, model and
// version, tokens, cost, cache, guardrail outcome and status. Never the key (the line has only
// its id); prompt and completion only when log_prompts put them on the line.
import type { AuditLog } from './audit-log.js';
import type { AuditRecord } from './audit-record.js';

const RECORDED_FIELDS = [
  'requestId',
  'method',
  'path',
  'model',
  'modelVersion',
  'stream',
  'promptTokens',
  'completionTokens',
  'costMicros',
  'cache',
  'guardrails',
  'finishReason',
  'status',
  'errorCode',
  'rejectedBy',
  'latencyMs',
  'ttftMs',
] as const;

/** A DynamoDB item holds 400 KB: longer texts are cut, and say so. */
const MAX_TEXT_CHARS = 64 * 1024;

export function appendRequestAudit(log: AuditLog, line: Record<string, unknown>, time: Date = new Date()): Promise<AuditRecord> {
  const data: Record<string, unknown> = {};
  for (const field of RECORDED_FIELDS) if (line[field] !== undefined) data[field] = line[field];
  for (const field of ['prompt', 'completion'] as const) {
    if (line[field] === undefined) continue;
    const text = typeof line[field] === 'string' ? (line[field] as string) : JSON.stringify(line[field]);
    data[field] = text.length > MAX_TEXT_CHARS ? text.slice(0, MAX_TEXT_CHARS) : line[field];
    if (text.length > MAX_TEXT_CHARS) data[`${field}Truncated`] = true;
  }
  return log.append({ kind: 'request', ...(typeof line.keyId === 'string' ? { keyId: line.keyId } : {}), data, time });
}
