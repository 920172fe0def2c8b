// A request's model name to the backend that serves it: an exact version (`qwen@4`), an alias in
// DynamoDB (its stable or canary target, by sticky assignment), or a bare model name.
import type { ModelBackend, PreparedGeneration } from '../backends/model-backend.js';
import type { GenerationEvent } from '../engine/index.js';
import { weightedTargets, type AliasRecord, type WeightedTarget } from './aliases.js';
import { AliasStoreUnavailableError, type AliasStore } from './alias-store.js';
import type { CanaryHealth, RequestOutcome } from './canary-health.js';
import { assignTarget } from './sticky-assignment.js';

/** An alias points at a version this gateway does not serve (a typo, or a model not deployed here). */
export class AliasTargetMissingError extends Error {
  override readonly name = 'AliasTargetMissingError';
}

export interface ResolvedModel {
  /** The version that serves the request (wrapped to count its outcome while a canary runs). */
  backend: ModelBackend;
  /** Set when the name was an alias. */
  alias?: { name: string; revision: number; role: WeightedTarget['role']; targets: WeightedTarget[] };
}

/** Model id → backend: the gateway's served ids (ModelRegistry.backends(), with [routing] applied). */
export type BackendLookup = ReadonlyMap<string, ModelBackend>;

export interface ModelResolverOptions {
  aliases: AliasStore;
  health?: CanaryHealth;
  /** Non-fatal trouble: the alias store unreadable, a count that could not be written. */
  warn?: (message: string, error?: unknown) => void;
}

export class ModelResolver {
  constructor(private readonly options: ModelResolverOptions) {}

  /**
   * The backend for `requested`, or undefined when nothing by that name is served here. Aliases
   * win over bare model names, so an alias named like the model (`qwen`) releases its versions.
   */
  async resolve(requested: string, stickiness: string, registry: BackendLookup): Promise<ResolvedModel | undefined> {
    const { aliases } = this.options;
    // Alias names never hold "@": an exact version needs no read.
    if (requested.includes('@')) {
      const backend = registry.get(requested);
      return backend && { backend };
    }
    let alias: AliasRecord | undefined;
    try {
      alias = await aliases.get(requested);
    } catch (error) {
      // The store is down and this gateway never saw the name: a served model still answers.
      const backend = registry.get(requested);
      if (!backend || !(error instanceof AliasStoreUnavailableError)) throw error;
      this.options.warn?.('alias store unavailable; serving the model by its name', error);
      return { backend };
    }
    if (!alias) {
      const backend = registry.get(requested);
      return backend && { backend };
    }
    return this.resolveAlias(alias, stickiness, registry);
  }

  /** The alias names to list beside the served models (none when the store can't be read). */
  async aliasNames(): Promise<string[]> {
    return this.options.aliases.names().catch((error) => {
      this.options.warn?.('alias index unavailable; listing served models only', error);
      return [];
    });
  }

  private resolveAlias(alias: AliasRecord, stickiness: string, registry: BackendLookup): ResolvedModel {
    const { health } = this.options;
    let chosen = assignTarget(alias, stickiness);
    const targets = weightedTargets(alias);
    let backend = registry.get(chosen.target);
    if (!backend && chosen.role === 'canary') {
      // A canary not deployed here yet must not break the alias: its share goes to stable.
      this.options.warn?.(`alias ${alias.name}: canary ${chosen.target} is not served here; using stable`);
      chosen = targets[0]!;
      backend = registry.get(chosen.target);
    }
    if (!backend) throw new AliasTargetMissingError(`alias ${alias.name} points at ${chosen.target}, which this gateway does not serve`);
    const role = chosen.role;
    const observed =
      health && alias.canary
        ? observe(backend, (outcome) => health.record(alias, { ...outcome, role }).catch((error) => this.options.warn?.('canary health count failed', error)))
        : backend;
    return { backend: observed, alias: { name: alias.name, revision: alias.revision, role, targets } };
  }
}

/**
 * The backend, reporting each generation's outcome once it ends: a server-side failure, or the
 * time to first token. A client leaving early or a cache hit reports nothing. The report is
 * awaited before the stream ends, so a Lambda invocation never freezes with it half sent.
 */
function observe(backend: ModelBackend, report: (outcome: Omit<RequestOutcome, 'role'>) => Promise<void>): ModelBackend {
  return {
    ...backend,
    async prepare(input, params, context): Promise<PreparedGeneration> {
      const prepared = await backend.prepare(input, params, context);
      return { ...prepared, run: (signal) => observedRun(prepared.run(signal), signal, report) };
    },
  };
}

async function* observedRun(
  events: AsyncIterable<GenerationEvent>,
  signal: AbortSignal,
  report: (outcome: Omit<RequestOutcome, 'role'>) => Promise<void>,
): AsyncGenerator<GenerationEvent> {
  const started = performance.now();
  let ttftMs: number | undefined;
  let outcome: Omit<RequestOutcome, 'role'> | undefined;
  try {
    for await (const event of events) {
      if (ttftMs === undefined && event.type === 'token') ttftMs = performance.now() - started;
      if (event.type === 'finish') outcome = { error: false, ttftMs: ttftMs ?? performance.now() - started };
      yield event;
    }
  } catch (error) {
    if (!signal.aborted && isServerFault(error)) outcome = { error: true };
    throw error;
  } finally {
    if (outcome) await report(outcome);
  }
}

/** Errors with an HTTP status count only from 500 up; anything else thrown is a fault. */
function isServerFault(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status >= 500 : true;
}
