// One generation's life between validation and output: cache lookup, admission (rate limits,
// concurrency, budget reservation), the backend's events, then settlement and the cache write.
import {
  AdmissionUnavailableError,
  costMicros,
  effectiveLimits,
  type Admission,
  type AdmissionControl,
  type ApiKeyRecord,
  type BudgetCrossing,
  type RateLimitStatus,
} from './admission/index.js';
import type { PlanConfig } from './config/index.js';
import type { GenerationInput, GenerationParams, ModelBackend, PreparedGeneration } from './backends/model-backend.js';
import {
  cacheKey,
  cacheScope,
  cacheStatus,
  decideCaching,
  recorder,
  replay,
  type CacheConfig,
  type CacheStatus,
  type ResponseCache,
} from './cache/index.js';
import type { GenerationEvent } from './engine/index.js';

export interface AdmissionSetup {
  control: AdmissionControl;
  plans: Readonly<Record<string, PlanConfig>>;
  /** DynamoDB down: true lets requests through unlimited, false (the default) refuses them. */
  failOpen: boolean;
  /** Per-model caps on requests in flight across all keys, by version (`name@version`) or model name. */
  modelCaps: ReadonlyMap<string, number>;
  /** Percents of a key's daily or monthly budget whose crossing is reported once, e.g. [50, 80, 100]. */
  budgetAlertPercents?: readonly number[];
}

export interface CacheSetup {
  cache: ResponseCache;
  config: CacheConfig;
}

export interface GenerationRequest {
  backend: ModelBackend;
  prepared: PreparedGeneration;
  input: GenerationInput;
  params: GenerationParams;
  key?: ApiKeyRecord;
  headers: Headers;
  signal: AbortSignal;
  /** Where non-fatal trouble (a cache or store hiccup the request survives) is reported. */
  warn(message: string, error: unknown): void;
  /** Told when this request's spend crossed a budget alert threshold for the first time. */
  onBudgetCrossing?(crossing: BudgetCrossing): void;
  /** Work that may finish after the response (the adapter keeps the process alive until it has). */
  waitUntil(work: Promise<void>): void;
}

export interface StartedGeneration {
  cacheStatus: CacheStatus;
  rateLimits: RateLimitStatus;
  events: AsyncIterable<GenerationEvent>;
  /**
   * Call once the generation is over (finished, aborted or failed) with the tokens it used: the
   * backend's own count from the finish event when there is one (a model behind an upstream
   * reports its real prompt tokens there; `prepare` only had an upper bound), else the completion
   * tokens seen so far. Settles the admission and stores a complete result in the cache. Returns
   * the cost in micro-dollars. Safe to call more than once; only the first call counts. Never
   * rejects: a failed settlement is reported through `warn` and the answer still goes out.
   */
  finish(usage: { promptTokens?: number; completionTokens: number }): Promise<number>;
}

export async function startGeneration(
  admission: AdmissionSetup | undefined,
  caching: CacheSetup | undefined,
  request: GenerationRequest,
): Promise<StartedGeneration> {
  const { backend, prepared, key } = request;
  const decision = caching ? decideCaching(request.headers, request.params, caching.config) : undefined;
  const hash =
    caching && (decision?.read || decision?.write)
      ? cacheKey({
          modelVersion: backend.version,
          scope: cacheScope(caching.config, key?.keyId),
          input: request.input,
          params: { ...request.params, maxTokens: prepared.maxTokens },
        })
      : undefined;

  const cached = hash && decision?.read ? await caching!.cache.get(hash) : undefined;
  const limits = key && admission ? effectiveLimits(admission.plans, key.plan, key.limits) : undefined;

  if (cached) {
    // A hit spends no budget, but it is a request: it counts toward the request rate limits.
    const rateLimits = key && admission && limits ? await guard(admission, request, () => admission.control.admitCached(key.keyId, limits)) : undefined;
    return { cacheStatus: 'HIT', rateLimits: rateLimits ?? {}, events: replay(cached), finish: async () => 0 };
  }

  const admitted: Admission | undefined =
    key && admission && limits
      ? await guard(admission, request, () =>
          admission.control.admit({
            keyId: key.keyId,
            limits,
            promptTokens: prepared.promptTokens,
            maxTokens: prepared.maxTokens,
            price: backend.price,
            model: modelCap(admission.modelCaps, backend),
          }),
        )
      : undefined;

  const live = prepared.run(request.signal);
  const recording = hash && decision?.write ? recorder(live) : undefined;
  let finished: Promise<number> | undefined;
  return {
    cacheStatus: decision ? cacheStatus(decision, false) : 'BYPASS',
    rateLimits: admitted?.rateLimits ?? {},
    events: recording?.events ?? live,
    finish(usage) {
      finished ??= (async () => {
        const promptTokens = usage.promptTokens ?? prepared.promptTokens;
        const settled = admitted
          ? await admission!.control.settle(admitted, { promptTokens, completionTokens: usage.completionTokens }).catch((error) => {
              // The answer is generated: deliver it. The request's slot and reservation stay held
              // until its lease expires, and its cost is logged, not counted.
              request.warn('settling failed', error);
              return { costMicros: costMicros(promptTokens, usage.completionTokens, backend.price), rollup: undefined };
            })
          : undefined;
        // Stored before the response ends, so a client repeating the request finds it.
        const entry = await recording?.completed;
        if (entry && hash && decision) {
          const stored = await caching!.cache.put(hash, entry, decision.ttlSeconds);
          if (stored === 'failed') request.warn('cache write failed', undefined);
        }
        // What the response need not wait for: the usage roll-up and budget alerts.
        request.waitUntil(afterResponse(settled?.rollup, settled?.costMicros ?? 0));
        return settled?.costMicros ?? 0;
      })();
      return finished;
    },
  };

  async function afterResponse(rollup: Promise<void> | undefined, cost: number): Promise<void> {
    await rollup?.catch((error) => request.warn('usage roll-up failed', error));
    if (admitted && limits && cost > 0 && admission!.budgetAlertPercents?.length) {
      const crossings = await admission!.control.newBudgetCrossings(admitted, limits, admission!.budgetAlertPercents).catch((error) => {
        request.warn('budget threshold check failed', error);
        return [];
      });
      for (const crossing of crossings) request.onBudgetCrossing?.(crossing);
    }
  }
}

/** A cap of the exact version (each has its own compute), else of the model's name. */
function modelCap(caps: ReadonlyMap<string, number>, backend: ModelBackend): { id: string; maxConcurrentRequests: number } {
  const id = caps.has(backend.version) ? backend.version : backend.id;
  return { id, maxConcurrentRequests: caps.get(id) ?? 0 };
}

/** Runs an admission call; when DynamoDB is down, fails open or closed as configured. */
async function guard<T>(admission: AdmissionSetup, request: GenerationRequest, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AdmissionUnavailableError && admission.failOpen) {
      request.warn('admission store unavailable; letting the request through (fail_open)', error);
      return undefined;
    }
    throw error;
  }
}
