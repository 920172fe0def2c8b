// An alias: the model name a client sends, pointing at a stable version and at most one canary
// with a weight. Every change (set, canary, promote, rollback) is a pure step from one record to
// the next, so the CLI and automatic rollback share the same rules.

export interface RollbackThresholds {
  /** Automatic rollback on or off for this alias. */
  readonly enabled: boolean;
  /** Roll back when the canary's error rate exceeds the stable's by more than this (0.05 = 5 points). */
  readonly maxErrorRateIncrease: number;
  /** Roll back when the canary's mean time to first token exceeds the stable's by this factor. */
  readonly maxTtftRatio: number;
  /** Requests of each target in the window before either threshold is judged. */
  readonly minRequests: number;
  /** Length of the sliding window, in seconds. */
  readonly windowSeconds: number;
}

export const DEFAULT_ROLLBACK_THRESHOLDS: RollbackThresholds = {
  enabled: true,
  maxErrorRateIncrease: 0.05,
  maxTtftRatio: 2,
  minRequests: 20,
  windowSeconds: 300,
};

export interface CanaryTarget {
  readonly target: string;
  /** Percent of traffic, 0–100. */
  readonly weight: number;
  /** Names this canary's health counters: kept while only its weight changes. */
  readonly id: string;
}

export interface AliasChange {
  readonly action: 'set' | 'canary' | 'promote' | 'rollback' | 'auto-rollback';
  readonly at: string;
  readonly reason?: string;
}

export interface AliasRecord {
  readonly name: string;
  readonly stable: string;
  readonly canary?: CanaryTarget;
  /** The stable version before the last `set` or `promote`: where `rollback` returns without a canary. */
  readonly previous?: string;
  readonly thresholds: RollbackThresholds;
  /** Every write increments it; each write is conditional on the revision it read. */
  readonly revision: number;
  readonly lastChange: AliasChange;
}

export interface WeightedTarget {
  readonly target: string;
  readonly weight: number;
  readonly role: 'stable' | 'canary';
}

/** Thrown for a change that makes no sense for the alias as it is (no canary to promote, say). */
export class AliasChangeError extends Error {
  override readonly name = 'AliasChangeError';
}

/** The alias as weighted targets, e.g. `qwen@3: 90, qwen@4: 10`. */
export function weightedTargets(alias: AliasRecord): WeightedTarget[] {
  if (!alias.canary) return [{ target: alias.stable, weight: 100, role: 'stable' }];
  return [
    { target: alias.stable, weight: 100 - alias.canary.weight, role: 'stable' },
    { target: alias.canary.target, weight: alias.canary.weight, role: 'canary' },
  ];
}

export function describeTargets(alias: AliasRecord): string {
  return weightedTargets(alias)
    .map((t) => `${t.target}: ${t.weight}`)
    .join(', ');
}

const stamp = (action: AliasChange['action'], now: Date, reason?: string): AliasChange => ({
  action,
  at: now.toISOString(),
  ...(reason ? { reason } : {}),
});

function next(alias: AliasRecord, changes: Partial<AliasRecord>, change: AliasChange): AliasRecord {
  const record: AliasRecord = { ...alias, ...changes, revision: alias.revision + 1, lastChange: change };
  // Absent, not undefined: the record is stored as it is.
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as unknown as AliasRecord;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
const VERSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]*@[A-Za-z0-9][A-Za-z0-9._:-]*$/;

function checkNames(name: string, target: string): void {
  if (!NAME.test(name)) throw new AliasChangeError(`"${name}" is not an alias name: letters, digits, ".", "_", ":", "/" or "-", no "@"`);
  if (!VERSION_ID.test(target)) throw new AliasChangeError(`"${target}" is not a model version: expected name@version, e.g. qwen@4`);
}

/** Points the alias at one target with all the traffic; a running canary ends. */
export function setAlias(
  current: AliasRecord | undefined,
  name: string,
  target: string,
  now = new Date(),
  thresholds: Partial<RollbackThresholds> = {},
): AliasRecord {
  checkNames(name, target);
  if (!current) {
    return { name, stable: target, thresholds: { ...DEFAULT_ROLLBACK_THRESHOLDS, ...thresholds }, revision: 1, lastChange: stamp('set', now) };
  }
  const previous = current.stable === target ? current.previous : current.stable;
  return next(current, { stable: target, canary: undefined, previous, thresholds: { ...current.thresholds, ...thresholds } }, stamp('set', now));
}

/** Starts a canary, or changes the weight of the running one (its health counters carry on). */
export function startCanary(
  current: AliasRecord | undefined,
  target: string,
  weight: number,
  now = new Date(),
  thresholds: Partial<RollbackThresholds> = {},
): AliasRecord {
  if (!current) throw new AliasChangeError('the alias does not exist yet: point it at its stable version first (aigw models alias set)');
  checkNames(current.name, target);
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) throw new AliasChangeError('the weight is a whole percent from 0 to 100');
  if (target === current.stable) throw new AliasChangeError(`${target} is already the stable version of ${current.name}`);
  const id = current.canary?.target === target ? current.canary.id : `${current.revision + 1}`;
  return next(current, { canary: { target, weight, id }, thresholds: { ...current.thresholds, ...thresholds } }, stamp('canary', now));
}

/** The canary becomes the stable version with all the traffic. */
export function promoteCanary(current: AliasRecord, now = new Date()): AliasRecord {
  if (!current.canary) throw new AliasChangeError(`${current.name} has no canary to promote`);
  return next(current, { stable: current.canary.target, canary: undefined, previous: current.stable }, stamp('promote', now));
}

/**
 * Undoes the last release step: a running canary ends (all traffic to stable); without one, the
 * version before the last `set` or `promote` becomes stable again.
 */
export function rollbackAlias(current: AliasRecord, now = new Date(), action: 'rollback' | 'auto-rollback' = 'rollback', reason?: string): AliasRecord {
  if (current.canary) return next(current, { canary: undefined }, stamp(action, now, reason));
  if (current.previous) return next(current, { stable: current.previous, previous: undefined }, stamp(action, now, reason));
  throw new AliasChangeError(`${current.name} has no canary and no previous version to roll back to`);
}
