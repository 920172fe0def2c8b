// A started generation as the HTTP answer: one JSON object, or server-sent events in OpenAI's
// order. Both gather the backend's events the same way and settle the generation exactly once.
import { ApiError, SSE_HEADERS, sseResponseBody, toApiError } from './api/index.js';
import { completeBody, streamChunk, usageChunk, type ResponseShape } from './api/response-shape.js';
import { formatUsd } from './admission/index.js';
import type { FinishReason, GenerationEvent, Usage } from './engine/index.js';
import type { StartedGeneration } from './generation-flow.js';
import type { requestLog } from './telemetry/index.js';

/** Which model version served a response (`name@version`), the same as its `model` field. */
export const MODEL_VERSION_HEADER = 'x-aigw-model-version';

/** What a response says of itself; a fallback may change which version it names (see nameServer). */
export interface NamedResponse {
  shape: ResponseShape;
  headers: Record<string, string>;
  /** The version that wrote the first token, when a fallback may have moved it off `shape.model`. */
  servedBy?: () => string | undefined;
}

/**
 * Names the version that wrote the answer, known once its first token is out: after a fallback it
 * is not the one the route picked. (A reply continued mid-stream is named by the one that began
 * it; the request log lists every attempt.)
 */
function nameServer(named: NamedResponse, ctx: ResponseContext): void {
  const served = named.servedBy?.();
  if (!served || served === named.shape.model) return;
  named.shape.model = served;
  named.headers[MODEL_VERSION_HEADER] = served;
  ctx.log.set({ modelVersion: served });
}

/** What the response side needs of the request: its log line and when it began. */
export interface ResponseContext {
  log: ReturnType<typeof requestLog>;
  started: number;
}

export async function wholeResponse(named: NamedResponse, started: StartedGeneration, ctx: ResponseContext): Promise<Response> {
  const outcome = newOutcome();
  for await (const _text of settledEvents(started, outcome, ctx));
  if (!outcome.settled) throw new ApiError(500, 'generation ended without a finish event');
  nameServer(named, ctx);
  const { finishReason, usage, costMicros } = outcome.settled;
  return Response.json(completeBody(named.shape, outcome.text, finishReason, usage), { headers: { ...named.headers, 'x-aigw-cost-usd': formatUsd(costMicros) } });
}

/**
 * Waits for the first event before answering 200: a failure before any token (an upstream's 400,
 * a model that cannot run) then gets its real status instead of an error event.
 */
export async function streamedResponse(
  named: NamedResponse,
  started: StartedGeneration,
  stream: { signal: AbortSignal; includeUsage: boolean },
  ctx: ResponseContext,
): Promise<Response> {
  const pending = started.events[Symbol.asyncIterator]();
  let first: IteratorResult<GenerationEvent>;
  try {
    first = await pending.next();
  } catch (error) {
    await started.finish({ completionTokens: 0 });
    throw error;
  }
  nameServer(named, ctx);
  const events = streamEvents(named.shape, { ...started, events: resumed(first, pending) }, stream, ctx);
  return new Response(sseResponseBody(closingEarly(events, () => abandon(started, pending, ctx))), {
    status: 200,
    headers: { ...SSE_HEADERS, ...named.headers },
  });
}

/** What a generation produced, filled in as its events pass. */
interface Outcome {
  text: string;
  completionTokens: number;
  /** Set once the finish event came and the generation was settled with the backend's usage. */
  settled?: { finishReason: FinishReason; usage: Usage; costMicros: number };
}

function newOutcome(): Outcome {
  return { text: '', completionTokens: 0 };
}

/**
 * The backend's text pieces, gathered into `outcome`. The generation is settled whatever happens
 * and only once the backend's events have ended (a concurrency slot is never free while the
 * backend still runs): with the backend's usage after the finish event, or, after a failure or
 * an abort, with the completion tokens seen so far.
 */
async function* settledEvents(started: StartedGeneration, outcome: Outcome, ctx: ResponseContext): AsyncGenerator<string> {
  let finish: Extract<GenerationEvent, { type: 'finish' }> | undefined;
  try {
    for await (const event of started.events) {
      ctx.log.token();
      outcome.text += event.text;
      if (event.type === 'token') outcome.completionTokens++;
      else finish = event;
      if (event.text) yield event.text;
    }
    if (finish) {
      const costMicros = await started.finish(finish.usage);
      // The backend's own token counts (an upstream's prompt count is exact only here, not in `prepare`).
      ctx.log.set({ promptTokens: finish.usage.promptTokens, completionTokens: finish.usage.completionTokens, finishReason: finish.finishReason, costMicros });
      outcome.settled = { finishReason: finish.finishReason, usage: finish.usage, costMicros };
    }
  } finally {
    if (!outcome.settled) {
      ctx.log.set({ completionTokens: outcome.completionTokens });
      await started.finish({ completionTokens: outcome.completionTokens });
    }
    ctx.log.setCompletion(outcome.text);
  }
}

/**
 * The SSE events of a streamed response, in OpenAI's order. The generation is settled before the
 * finish and usage chunks (the usage chunk carries the cost); the request is logged when the stream ends.
 */
async function* streamEvents(
  shape: ResponseShape,
  started: StartedGeneration,
  stream: { signal: AbortSignal; includeUsage: boolean },
  ctx: ResponseContext,
): AsyncGenerator<object> {
  let status = 200;
  const outcome = newOutcome();
  try {
    if (shape.endpoint === 'chat') yield streamChunk(shape, stream.includeUsage, { role: 'assistant', content: '' });
    for await (const text of settledEvents(started, outcome, ctx)) yield streamChunk(shape, stream.includeUsage, { content: text });
    if (outcome.settled) {
      yield streamChunk(shape, stream.includeUsage, {}, outcome.settled.finishReason);
      if (stream.includeUsage) yield usageChunk(shape, outcome.settled.usage, outcome.settled.costMicros);
    }
  } catch (error) {
    status = stream.signal.aborted ? 499 : toApiError(error).status;
    if (status >= 500) ctx.log.set({ error: describeError(error) });
    throw error;
  } finally {
    // Also runs when the client disconnects and the stream is cancelled mid-way.
    if (stream.signal.aborted) status = 499;
    ctx.log.finish(status, ctx.started);
  }
}

/**
 * A client that leaves before the body's first read cancels a generator that never started, so
 * its `finally` never runs: this makes sure the backend, the admission and the log are still closed.
 */
function closingEarly<T>(events: AsyncGenerator<T>, onUnstarted: () => Promise<void>): AsyncGenerator<T> {
  let started = false;
  const original = events.return.bind(events);
  return Object.assign(events, {
    next: ((next) => (...args: []) => ((started = true), next(...args)))(events.next.bind(events)),
    async return(value: T | PromiseLike<T>) {
      if (!started) await onUnstarted();
      return original(value);
    },
  });
}

async function abandon(started: StartedGeneration, pending: AsyncIterator<GenerationEvent>, ctx: ResponseContext): Promise<void> {
  await pending.return?.();
  await started.finish({ completionTokens: 0 });
  ctx.log.finish(499, ctx.started);
}

/** The events of an iterator whose first result was already taken. */
async function* resumed(first: IteratorResult<GenerationEvent>, rest: AsyncIterator<GenerationEvent>): AsyncGenerator<GenerationEvent> {
  if (first.done) return;
  try {
    yield first.value;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  } finally {
    // Ending early (client gone) must reach the source, so generation stops.
    await rest.return?.();
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
