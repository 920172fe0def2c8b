// One generation's life between validation and output: cache lookup beside admission (rate
// limits, concurrency, budget reservation), the backend's events, the cache write, settlement.
import {
  AdmissionRejectedError,
  AdmissionUnavailableError,
  costMicros,
  effectiveLimits,
  type Admission,
  type AdmissionControl,
  type ApiKeyRecord,
  type BudgetCrossing,
  type RateLimitStatus,
  type RejectionReason,
  type SettledUsage,
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
  /** Whatever else shapes the output and so the cache entry (the guardrail profile's id). */
  cacheVariant?: string;
}

export interface StartedGeneration {
  cacheStatus: CacheStatus;
  rateLimits: RateLimitStatus;
  events: AsyncIterable<GenerationEvent>;
  /**
   * Call once the generation is over (finished, aborted or failed) with the tokens it used: the
   * backend's own count from the finish event when there is one (a model behind an upstream
   * reports its real prompt tokens there; `prepare` only had an upper bound), else the completion
   * tokens seen so far. Stores a complete result in the cache and hands the settlement of the
   * admission to waitUntil (it runs after the response). Returns the cost in micro-dollars. Safe
   * to call more than once; only the first call counts. Never rejects: a failed settlement is
   * reported through `warn` and the answer still goes out.
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
  const keyedVersion = prepared.version ?? backend.version;
  const hash =
    caching && (decision?.read || decision?.write)
      ? cacheKey({
          modelVersion: `${keyedVersion}${request.cacheVariant ? `+${request.cacheVariant}` : ''}`,
          scope: cacheScope(caching.config, key?.keyId),
          input: request.input,
          params: { ...request.params, maxTokens: prepared.maxTokens },
        })
      : undefined;
  const limits = key && admission ? effectiveLimits(admission.plans, key.plan, key.limits) : undefined;
  const control = admission?.control;

  // The cache lookup and the admission run side by side: one DynamoDB round trip before the
  // first byte. The admission is the full one (slot, reservation) as most requests miss; a hit
  // gives back what a hit does not count, after the response.
  const [lookup, admitting] = await Promise.allSettled([
    hash && decision?.read ? caching!.cache.get(hash) : undefined,
    key && admission && limits
      ? guard(admission, request, () =>
          admission.control.admit({
            keyId: key.keyId,
            limits,
            promptTokens: prepared.promptTokens,
            maxTokens: prepared.maxTokens,
            price: backend.price,
            reserveMicros: prepared.reserveMicros,
            model: modelCap(admission.modelCaps, backend),
          }),
        )
      : undefined,
  ]);
  // ResponseCache.get never rejects: a failing store is a miss.
  const cached = lookup.status === 'fulfilled' ? lookup.value : undefined;

  if (cached) {
    // A hit spends no budget, but it is a request: it counts toward the request rate limits.
    let rateLimits: RateLimitStatus | undefined;
    if (admitting.status === 'fulfilled' && admitting.value) {
      const hit = control!.asCacheHit(admitting.value);
      rateLimits = hit.rateLimits;
      request.waitUntil(hit.release().catch((error) => request.warn('releasing a cache hit’s admission failed', error)));
    } else if (admitting.status === 'rejected') {
      const error: unknown = admitting.reason;
      // Refused by a limit a hit is not held to (concurrency, budget, tokens): ask as a hit.
      if (!(error instanceof AdmissionRejectedError) || REQUEST_LIMITS.has(error.reason)) throw rejected(error);
      rateLimits = await guard(admission!, request, () => control!.admitCached(key!.keyId, limits!)).catch((e: unknown) => Promise.reject(rejected(e)));
    }
    if (key && control) record(control.recordUsage(key.keyId, { kind: 'cache_hit', version: keyedVersion }));
    return { cacheStatus: 'HIT', rateLimits: rateLimits ?? {}, events: replay(cached), finish: async () => 0 };
  }
  if (admitting.status === 'rejected') throw rejected(admitting.reason);
  const admitted: Admission | undefined = admitting.value;

  const live = prepared.run(request.signal);
  const recording = hash && decision?.write ? recorder(live) : undefined;
  let finished: Promise<number> | undefined;
  return {
    cacheStatus: decision ? cacheStatus(decision, false) : 'BYPASS',
    rateLimits: admitted?.rateLimits ?? {},
    events: recording?.events ?? live,
    finish(usage) {
      finished ??= (async () => {
        // A fallback chain knows what its targets cost; one backend's price times the tokens otherwise.
        const used = {
          promptTokens: usage.promptTokens ?? prepared.promptTokens,
          completionTokens: usage.completionTokens,
          costMicros: prepared.spentMicros?.(),
          // The version the response names: the one that wrote its first token.
          version: prepared.startedBy?.() ?? keyedVersion,
        };
        // Settled after the response (the cost is known without DynamoDB): see AdmissionControl.settle.
        if (admitted) request.waitUntil(afterResponse(admitted, used));
        // Stored after the response too; until stored, this instance answers a repeat from memory.
        const entry = await recording?.completed;
        // An answer a fallback target wrote (or finished) is not the keyed version's: not stored.
        if (entry && hash && decision && (prepared.servedBy ? prepared.servedBy() : keyedVersion) === keyedVersion) {
          request.waitUntil(
            caching!.cache.put(hash, entry, decision.ttlSeconds).then((stored) => {
              if (stored === 'failed') request.warn('cache write failed', undefined);
            }),
          );
        }
        return used.costMicros ?? costMicros(used.promptTokens, used.completionTokens, backend.price);
      })();
      return finished;
    },
  };

  /** A refusal by a limit goes to the key's usage roll-up (after the response) before it is thrown. */
  function rejected(error: unknown): unknown {
    if (error instanceof AdmissionRejectedError && key && control) record(control.recordUsage(key.keyId, { kind: 'rejected', reason: error.reason }));
    return error;
  }

  function record(work: Promise<void>): void {
    request.waitUntil(work.catch((error) => request.warn('usage roll-up failed', error)));
  }

  async function afterResponse(admitted: Admission, used: SettledUsage): Promise<void> {
    let cost: number;
    try {
      cost = await admission!.control.settle(admitted, used);
    } catch (error) {
      // Every try within the settle budget failed: the request's slot and reservation stay held
      // until its lease expires (then the next request reclaims them); its cost is logged, not counted.
      request.warn('settling failed; the hold is released when its lease expires', error);
      return;
    }
    if (limits && cost > 0 && admission!.budgetAlertPercents?.length) {
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

/** Limits a cache hit counts toward, as any request does. */
const REQUEST_LIMITS: ReadonlySet<RejectionReason> = new Set(['requests_per_minute', 'requests_per_month']);

/** Runs an admission call; when DynamoDB is down, fails open or closed as configured. */
async function guard<T>(admission: AdmissionSetup, request: GenerationRequest, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AdmissionUnavailableError && error.takeBack) request.waitUntil(error.takeBack);
    if (error instanceof AdmissionUnavailableError && admission.failOpen) {
      request.warn('admission store unavailable; letting the request through (fail_open)', error);
      return undefined;
    }
    throw error;
  }
}
