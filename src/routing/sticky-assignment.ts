// Which target of an alias a request goes to: a hash of who is asking, so the same caller lands
// on the same version for the whole life of a canary, and its conversations and caches stay put.
import { createHash, randomBytes } from 'node:crypto';
import { weightedTargets, type AliasRecord, type WeightedTarget } from './aliases.js';

const BUCKETS = 10_000;

/**
 * Who is asking: the API key, narrowed by the `x-aigw-session` header or else the request's
 * `user` field when sent. Without any of them (keys off), every request is its own caller.
 */
export function stickinessKey(parts: { keyId?: string; session?: string | null; user?: string | null }): string {
  const who = parts.session || parts.user;
  if (!parts.keyId && !who) return randomBytes(8).toString('hex');
  return `${parts.keyId ?? ''}\u0000${who ?? ''}`;
}

/**
 * A caller's bucket, 0–9999, for one canary: the canary's id is hashed in (not its weight), so a
 * weight change keeps every bucket where it is. A bucket below weight × 100 gets the canary; so
 * raising the weight only moves stable callers onto the canary, and lowering it only moves canary
 * callers back, never the other way round.
 */
export function stickyBucket(alias: string, canaryId: string, key: string): number {
  const digest = createHash('sha256').update(`${alias}\u0000${canaryId}\u0000${key}`).digest();
  return digest.readUInt32BE(0) % BUCKETS;
}

export function assignTarget(alias: AliasRecord, key: string): WeightedTarget {
  const [stable, canary] = weightedTargets(alias);
  if (!canary || canary.weight === 0) return stable!;
  return stickyBucket(alias.name, alias.canary!.id, key) < canary.weight * (BUCKETS / 100) ? canary : stable!;
}
