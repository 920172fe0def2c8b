// Aliases as a gateway runs them: the cached alias store, canary health counting and automatic
// rollback, reported as a log line and a metric by the gateway whose write ended the canary.
import type { Metrics } from '@aws-lambda-powertools/metrics';
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
}

export function createModelResolver(store: Store, options: ReleaseSetupOptions): ModelResolver {
  const aliases = new AliasStore(store, {
    cacheMs: options.cacheMs,
    onStale: (what, error) => options.logger.info('warning', { warning: `${what}: read failed, using the last copy`, cause: String(error) }),
  });
  const health = new CanaryHealth(store, aliases, {
    ...options.health,
    onRollback: (event) => {
      // The audit line of a release step no operator took: what, why, and the numbers it saw.
      options.logger.info('alias_auto_rollback', { ...event });
      if (options.metrics) emitAliasAutoRollback(options.metrics, event.alias);
    },
  });
  return new ModelResolver({
    aliases,
    health,
    warn: (message, error) => options.logger.info('warning', { warning: message, ...(error ? { cause: String(error) } : {}) }),
  });
}
