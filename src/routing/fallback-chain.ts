/**
 * A fallback chain: one public model served by an ordered list of targets. Before the first
 * token, a target that can't be reached, is too slow, fails, is throttled or is too small for the
 * prompt hands the request to the next; after it, the next target continues the partial reply.
 * The client sees one response with one usage covering every target that generated.
 */
import { costMicros, type ModelPrice } from '../admission/pricing.js';
import type { GenerationInput, GenerationParams, ModelBackend, PrepareContext, PreparedGeneration } from '../backends/model-backend.js';
import { BackendError } from '../backends/errors.js';
// The engine's error classes from their own files: its index would load onnxruntime into the gateway function.
import { ChatTemplateError } from '../engine/chat-template.js';
import { EngineError } from '../engine/errors.js';
import type { GenerationEvent } from '../engine/index.js';
import { SamplingParamError } from '../engine/sampler.js';
import { StopSequenceError } from '../engine/stop-sequences.js';
import type { BreakerPermit, CircuitBreaker } from './circuit-breaker.js';
import { canContinue, continuationInput } from './continuation.js';
import { DeadlineError, RoutingError } from './routing-errors.js';

export interface ChainTarget {
  backend: ModelBackend;
  breaker: CircuitBreaker;
}

/** Per-target concurrency caps: a release function, or undefined when the target is at its cap. */
export interface TargetSlots {
  acquire(target: ModelBackend): Promise<(() => Promise<void>) | undefined>;
}

export interface FallbackChainOptions {
  /** The public model id clients send. */
  id: string;
  /** In order of preference; the first is the primary. */
  targets: readonly ChainTarget[];
  /** The longest wait for an attempt's first token (response headers included) before falling back. */
  firstTokenTimeoutMs: number;
  /** The longest gap between tokens before a stream counts as stalled and is continued elsewhere. */
  stallTimeoutMs: number;
  slots?: TargetSlots;
}

/** Why a target did not serve (or finish) the request; a bounded set, also the metrics' dimension. */
export type FallbackTrigger =
  | 'unreachable' // connection refused or reset, or an upstream 429 / capacity answer
  | 'timeout' // no response headers or first token within the deadline
  | 'server_error' // a 5xx, or a broken answer before the first token
  | 'context_length' // the prompt does not fit the target
  | 'stream_cut' // the stream broke off after tokens
  | 'stream_stalled' // the stream stopped sending tokens
  | 'breaker_open'
  | 'at_capacity' // the target's own concurrency cap
  | 'cannot_continue'; // tokens were shown and this target can't continue a partial reply

export interface AttemptRecord {
  target: string;
  outcome: 'served' | FallbackTrigger;
  /** Tokens this target generated for the reply. */
  tokens: number;
}

interface Spend {
  price: ModelPrice;
  promptTokens: number;
  completionTokens: number;
}

export function fallbackChain(options: FallbackChainOptions): ModelBackend {
  const primary = options.targets[0]!.backend;
  const backends = options.targets.map((t) => t.backend);
  return {
    id: options.id,
    // Cache entries follow the primary: the chain is fixed, so the same request routes the same way.
    version: primary.version,
    ...reachable(backends, primary),
    prepare: (input, params, context) => prepareChain(options, input, params, context),
  };
}

/**
 * What a model served by several backends shows of itself: the highest price and the longest
 * context of any it may reach (what admission and /v1/models see), the rest from the first.
 */
export function reachable(backends: readonly ModelBackend[], first: ModelBackend): Pick<ModelBackend, 'price' | 'created' | 'ownedBy' | 'contextLength' | 'continuesChat'> {
  return {
    price: {
      inputMicrosPerMillionTokens: Math.max(...backends.map((b) => b.price.inputMicrosPerMillionTokens)),
      outputMicrosPerMillionTokens: Math.max(...backends.map((b) => b.price.outputMicrosPerMillionTokens)),
    },
    created: first.created,
    ownedBy: first.ownedBy,
    contextLength: Math.max(...backends.map((b) => b.contextLength)),
    continuesChat: backends.some((b) => b.continuesChat),
  };
}

async function prepareChain(
  options: FallbackChainOptions,
  input: GenerationInput,
  params: GenerationParams,
  context: PrepareContext | undefined,
): Promise<PreparedGeneration> {
  // Preparing costs no model work (a tokenizer run, or a bound): every target knows whether it fits.
  const settled = await Promise.allSettled(options.targets.map((t) => t.backend.prepare(input, params, context)));
  const primaryFailure = settled[0]!.status === 'rejected' ? settled[0]!.reason : undefined;
  // A client error the primary explains (not a context too small) is the client's to see.
  if (primaryFailure !== undefined && triggerBeforeFirstToken(primaryFailure) === undefined) throw primaryFailure;
  const usable = settled.flatMap((result, index) => (result.status === 'fulfilled' ? [{ index, prepared: result.value }] : []));
  if (usable.length === 0) throw primaryFailure ?? (settled.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;

  // Targets skipped now are the first attempts; runChain adds the rest.
  const attempts: AttemptRecord[] = settled.flatMap((result, index) =>
    result.status === 'rejected' ? [{ target: options.targets[index]!.backend.version, outcome: triggerBeforeFirstToken(result.reason) ?? 'server_error', tokens: 0 }] : [],
  );
  const promptTokens = Math.max(...usable.map((u) => u.prepared.promptTokens));
  const maxTokens = Math.max(...usable.map((u) => u.prepared.maxTokens));
  const spends: Spend[] = [];
  const reply: ReplyAuthor = {};
  return {
    promptTokens,
    maxTokens,
    reserveMicros: reservation(options, usable.map((u) => options.targets[u.index]!.backend), input, promptTokens, maxTokens),
    spentMicros: () => spends.reduce((sum, s) => sum + costMicros(s.promptTokens, s.completionTokens, s.price), 0),
    // The whole answer is one version's only when exactly one target generated it.
    servedBy: () => {
      const served = attempts.find((a) => a.outcome === 'served');
      return served && attempts.every((a) => a === served || a.tokens === 0) ? served.target : undefined;
    },
    startedBy: () => reply.startedBy,
    run: (signal) =>
      runChain(options, {
        input,
        params,
        context,
        prepared: new Map(usable.map((u) => [u.index, u.prepared])),
        attempts,
        spends,
        reply,
        signal,
      }),
  };
}

/**
 * The most the request can cost. Without a continuation, one target generates: the costliest.
 * With one, each target may read the prompt plus the reply so far and the reply's tokens are
 * written once in all, at worst at the highest output price.
 */
function reservation(options: FallbackChainOptions, usable: ModelBackend[], input: GenerationInput, promptTokens: number, maxTokens: number): number {
  const single = Math.max(...usable.map((b) => costMicros(promptTokens, maxTokens, b.price)));
  if (!usable.slice(1).some((b) => canContinue(b, input))) return single;
  const reads = usable.reduce((sum, b) => sum + Math.ceil(((promptTokens + maxTokens) * b.price.inputMicrosPerMillionTokens) / 1_000_000), 0);
  const writes = Math.ceil((maxTokens * Math.max(...usable.map((b) => b.price.outputMicrosPerMillionTokens))) / 1_000_000);
  return Math.max(single, reads + writes);
}

/** Which target began the reply the client sees. */
interface ReplyAuthor {
  startedBy?: string;
}

interface ChainRun {
  input: GenerationInput;
  params: GenerationParams;
  context: PrepareContext | undefined;
  /** Each usable target's preparation for the request as the client sent it. */
  prepared: Map<number, PreparedGeneration>;
  attempts: AttemptRecord[];
  spends: Spend[];
  reply: ReplyAuthor;
  signal: AbortSignal;
}

async function* runChain(options: FallbackChainOptions, run: ChainRun): AsyncGenerator<GenerationEvent, void, undefined> {
  const { input, signal } = run;
  let partial = '';
  /** Tokens of the reply the client has seen, over every target. */
  let shownTokens = 0;
  /** The prompt as counted by the target that started the reply. */
  let replyPromptTokens: number | undefined;
  let lastError: unknown;
  const report = () => {
    run.context?.report?.({
      attempts: run.attempts,
      fallbacks: run.attempts.filter((a) => a.outcome !== 'served').map((a) => a.outcome),
    });
  };
  report();

  for (const [index, target] of options.targets.entries()) {
    signal.throwIfAborted();
    const { backend } = target;
    const record = (outcome: AttemptRecord['outcome'], tokens = 0) => {
      run.attempts.push({ target: backend.version, outcome, tokens });
      report();
    };
    const continuing = partial.length > 0;
    const last = index === options.targets.length - 1;
    if (continuing && shownTokens >= replyBudget(run)) {
      // The stream broke just as the reply reached max_tokens: it is complete.
      yield { type: 'finish', finishReason: 'length', text: '', usage: { promptTokens: replyPromptTokens ?? 0, completionTokens: shownTokens } };
      return;
    }
    if (!continuing && !run.prepared.has(index)) continue; // skipped when preparing (recorded there)
    if (continuing && !canContinue(backend, input)) {
      record('cannot_continue');
      continue;
    }
    const permit = target.breaker.tryAcquire();
    if (!permit) {
      record('breaker_open');
      continue;
    }
    let prepared: PreparedGeneration;
    try {
      prepared = continuing ? await prepareContinuation(backend, run, partial, shownTokens) : run.prepared.get(index)!;
    } catch (error) {
      const trigger = triggerBeforeFirstToken(error);
      permit.release();
      if (trigger === undefined) throw error;
      record(trigger);
      lastError = error;
      continue;
    }
    let release: (() => Promise<void>) | undefined;
    try {
      release = options.slots ? await options.slots.acquire(backend) : async () => undefined;
    } catch (error) {
      // The limits store is down: the request's own problem, not this target's.
      permit.release();
      throw error;
    }
    if (!release) {
      permit.release();
      record('at_capacity');
      continue;
    }

    // Each attempt has its own signal: a deadline stops this target without ending the request.
    const attempt = new AbortController();
    const onAbort = () => attempt.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort(); // the client left while this target was being prepared
    const iterator = prepared.run(attempt.signal)[Symbol.asyncIterator]();
    const spend: Spend = { price: backend.price, promptTokens: prepared.promptTokens, completionTokens: 0 };
    let tokens = 0;
    let ended = false;
    try {
      for (;;) {
        // The last target has nowhere to hand over to: only its backend's own timeouts apply.
        const deadline = last ? undefined : tokens === 0 ? options.firstTokenTimeoutMs : options.stallTimeoutMs;
        const next = await nextWithin(iterator, deadline, tokens === 0 ? 'first_token' : 'stall');
        if (next.done) throw new RoutingError('model_unavailable', 502, 'the target ended its stream without a finish');
        const event = next.value;
        if (event.type === 'token') {
          if (tokens++ === 0) run.spends.push(spend);
          spend.completionTokens = tokens;
          replyPromptTokens ??= prepared.promptTokens;
          run.reply.startedBy ??= backend.version;
          partial += event.text;
          yield event;
          continue;
        }
        ended = true;
        if (tokens === 0) run.spends.push(spend);
        Object.assign(spend, event.usage);
        permit.success();
        run.reply.startedBy ??= backend.version; // an empty answer: its writer is the one that finished
        record('served', event.usage.completionTokens);
        // The reply's prompt is the one its first target read; its length is every target's share.
        const promptTokens = replyPromptTokens === undefined || !continuing ? event.usage.promptTokens : replyPromptTokens;
        yield { ...event, usage: { promptTokens, completionTokens: shownTokens + event.usage.completionTokens } };
        return;
      }
    } catch (error) {
      ended = true;
      if (signal.aborted) {
        permit.release();
        throw error;
      }
      const trigger = tokens > 0 ? (error instanceof DeadlineError ? 'stream_stalled' : 'stream_cut') : triggerBeforeFirstToken(error);
      if (trigger === undefined) {
        // A client error the target explained: it is alive, and the client gets the answer.
        permit.success();
        throw error;
      }
      permit.failure();
      record(trigger, tokens);
      // Tokens that showed no text (a character still incomplete) leave nothing to continue from.
      if (partial.length > 0) shownTokens += tokens;
      else {
        replyPromptTokens = undefined;
        run.reply.startedBy = undefined;
      }
      lastError = error;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (!ended) permit.release(); // the client stopped reading mid-stream
      attempt.abort();
      // A target still running (stalled, or mid-step) stops on the abort; nobody waits for it.
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
      await release();
    }
  }
  if (partial.length > 0) {
    throw new RoutingError('stream_interrupted', 502, `The model stream broke off after ${shownTokens} tokens and no fallback target could continue it.`, {
      cause: lastError,
    });
  }
  throw lastError ?? new RoutingError('model_unavailable', 503, `No target of the model \`${options.id}\` is available right now. Please try again shortly.`);
}

/** The reply's completion tokens over every target: the client's max_tokens, or the most any target allowed. */
function replyBudget(run: ChainRun): number {
  return run.params.maxTokens ?? Math.max(...[...run.prepared.values()].map((p) => p.maxTokens));
}

/** The target's preparation for continuing `partial`, with what is left of the reply's token budget. */
async function prepareContinuation(backend: ModelBackend, run: ChainRun, partial: string, shownTokens: number): Promise<PreparedGeneration> {
  return backend.prepare(continuationInput(run.input, partial), { ...run.params, maxTokens: replyBudget(run) - shownTokens }, run.context);
}

/** The iterator's next result, or a DeadlineError after `ms` (none without). */
async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number | undefined, kind: DeadlineError['kind']): Promise<IteratorResult<T>> {
  const next = iterator.next();
  if (ms === undefined) return next;
  next.catch(() => undefined); // when the deadline wins, the late rejection is nobody's
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(kind, ms)), ms);
  });
  try {
    return await Promise.race([next, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Which failures before the first token hand the request on (undefined: the client's own error,
 * which every target would refuse alike).
 */
export function triggerBeforeFirstToken(error: unknown): FallbackTrigger | undefined {
  if (error instanceof DeadlineError) return 'timeout';
  if (error instanceof BackendError) {
    switch (error.kind) {
      case 'context_length_exceeded':
        return 'context_length';
      case 'upstream_unavailable':
        return 'unreachable';
      case 'upstream_failed':
        return 'server_error';
      case 'upstream_refused':
        // The upstream's own 4xx: only a context too small for the prompt is worth another target.
        return error.detail.refusal?.code === 'context_length_exceeded' ? 'context_length' : undefined;
    }
  }
  if (error instanceof EngineError) {
    if (error.code === 'context_length_exceeded') return 'context_length';
    return error.code === 'invalid_generation_params' ? undefined : 'server_error';
  }
  // A chain behind this one that gave up, or anything unexpected (a model that crashed).
  if (error instanceof RoutingError) return error.code === 'model_unavailable' ? 'unreachable' : 'server_error';
  return isClientError(error) ? undefined : 'server_error';
}

/** The engine's parameter and template refusals: the client's to fix, on any target alike. */
function isClientError(error: unknown): boolean {
  return error instanceof SamplingParamError || error instanceof StopSequenceError || (error instanceof ChatTemplateError && error.code === 'template_render_failed');
}
