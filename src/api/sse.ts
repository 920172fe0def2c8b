import { errorBody, toApiError } from './errors.js';

/** Response headers for a server-sent event stream; x-accel-buffering stops proxies holding chunks back. */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
});

export interface SseOptions {
  /** Turns an error thrown mid-stream into the event body sent to the client (and is where to log it). */
  onError?: (error: unknown) => object;
}

const encoder = new TextEncoder();
const DONE = encoder.encode('data: [DONE]\n\n');

function encodeEvent(event: object): Uint8Array {
  // JSON.stringify escapes newlines, so one event is always one `data:` line.
  return encoder.encode(`data: ${JSON.stringify(event)}\n\n`);
}

/**
 * Frames events the way OpenAI does (`data: <json>` per event, `data: [DONE]` at the end, no
 * `event:` lines). Pull-based with no read-ahead, so the source advances only as fast as the
 * client reads; cancelling (the client went away) calls the iterator's return() to stop it.
 * An error mid-stream becomes one `data: {"error": ...}` event, then the stream closes.
 */
export function sseResponseBody(events: AsyncIterable<object>, opts: SseOptions = {}): ReadableStream<Uint8Array> {
  let iterator: AsyncIterator<object> | undefined;
  let cancelled = false;

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= events[Symbol.asyncIterator]();
        let result: IteratorResult<object>;
        try {
          result = await iterator.next();
        } catch (error) {
          if (cancelled) return;
          const body = opts.onError ? opts.onError(error) : errorBody(toApiError(error));
          controller.enqueue(encodeEvent(body));
          controller.close();
          return;
        }
        // The client may have gone while the source was producing this event.
        if (cancelled) return;
        if (result.done) {
          controller.enqueue(DONE);
          controller.close();
          return;
        }
        controller.enqueue(encodeEvent(result.value));
      },
      async cancel() {
        cancelled = true;
        iterator ??= events[Symbol.asyncIterator]();
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
