// Aliases as a gateway runs them: the cached alias store, canary health counting and automatic
// rollback, reported as a log line, a metric and an audit record by the gateway whose write ended
// the canary.
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { appendAudit } from '../audit/index.js';
import type { Store } from '../store/index.js';
import { emitAliasAutoRollback } from '../telemetry/index.js';
import { AliasStore } from './alias-store.js';
import { CanaryHealth, type CanaryHealthOptions } from './canary-health.js';
import { ModelResolver } from './model-resolver.js';

export interface ReleaseLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface ReleaseSetupOptions {
  /** [aliases] cache_seconds, in milliseconds: how stale a gateway's copy of an alias may be. */
  cacheMs: number;
  logger: ReleaseLogger;
  metrics?: Metrics;
  health?: Omit<CanaryHealthOptions, 'onRollback'>;
  /** Audits each automatic rollback (kind auto_rolled_back) beside the alias, as the CLI's release steps are. */
  audit?: { actor: string; retentionDays: number };
}

export function createModelResolver(store: Store, options: ReleaseSetupOptions): ModelResolver {
  const aliases = new AliasStore(store, {
    cacheMs: options.cacheMs,
    onStale: (what, error) => options.logger.info('warning', { warning: `${what}: read failed, using the last copy`, cause: String(error) }),
  });
  const health = new CanaryHealth(store, aliases, {
    ...options.health,
    onRollback: async (event) => {
      // A release step no operator took: what, why, and the numbers it saw.
      options.logger.info('alias_auto_rollback', { ...event });
      if (options.metrics) emitAliasAutoRollback(options.metrics, event.alias);
      if (!options.audit) return;
      const { actor, retentionDays } = options.audit;
      await appendAudit(store, { kind: 'auto_rolled_back', actor, data: { ...event } }, { retentionDays }).catch((error: unknown) =>
        options.logger.info('warning', { warning: `auditing the automatic rollback of ${event.alias} failed`, cause: String(error) }),
      );
    },
  });
  return new ModelResolver({
    aliases,
    health,
    warn: (message, error) => options.logger.info('warning', { warning: message, ...(error ? { cause: String(error) } : {}) }),
  });
}
