// Carries the gateway over a Lambda function URL in RESPONSE_STREAM mode: a function-URL event
// (payload format 2.0) → Request, Response → middy's streaming result, written chunk by chunk.
import { Readable } from 'node:stream';
import middy from '@middy/core';
// @types/aws-lambda declares the runtime's `awslambda` global (streamifyResponse, HttpResponseStream):
// importing its types here is what puts that one declaration in scope for adapters and tests.
import type { Context, LambdaFunctionURLEvent, StreamifyHandler } from 'aws-lambda';
import { ApiError, errorResponse } from '../api/errors.js';
import { badRequestTarget, isUnsupportedMethod, requestUrl, unsupportedMethod } from '../api/request-target.js';
import type { Gateway, GatewayContext } from '../gateway.js';

export type { LambdaFunctionURLEvent } from 'aws-lambda';

/** What the runtime's HttpResponseStream.from() sends before the body: status, headers, cookies. */
export interface StreamingPrelude {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
}

/** A middy streaming result: middy writes the prelude, then pipes `body` into the response stream. */
export interface StreamingResult extends StreamingPrelude {
  body: Readable;
}

/** The function-URL handler the Lambda runtime calls as `(event, responseStream, context)`. */
export type StreamingLambdaHandler = StreamifyHandler<LambdaFunctionURLEvent, void>;

/**
 * One invocation's lifetime: `abort` stops the request (the client went away), and work the
 * gateway hands to waitUntil is awaited before the handler returns, since Lambda freezes the
 * process as soon as it has.
 */
export class Invocation implements GatewayContext {
  readonly abort = new AbortController();
  private readonly pending = new Set<Promise<void>>();

  waitUntil(work: Promise<unknown>): void {
    const tracked: Promise<void> = work.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Resolves once all work has finished, including work added while waiting. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}

/**
 * A function-URL event as the Request the gateway takes; `signal` aborts it (client gone,
 * deadline). An event no Request can carry (a method the Fetch API refuses, a header it can't
 * hold, a path that is no path) is the Response to send instead.
 */
export function toRequest(event: LambdaFunctionURLEvent, signal?: AbortSignal): Request | Response {
  const method = event.requestContext.http.method;
  if (isUnsupportedMethod(method)) return errorResponse(unsupportedMethod(method));
  const headers = new Headers();
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    // Lambda has already joined repeated headers with commas, as HTTP allows.
    if (value === undefined) continue;
    try {
      headers.set(name, value);
    } catch {
      return errorResponse(new ApiError(400, 'A request header has a name or value HTTP does not allow.', { code: 'invalid_header' }));
    }
  }
  // Function URLs move the Cookie header into `cookies`, one entry per cookie.
  if (event.cookies && event.cookies.length > 0) {
    const existing = headers.get('cookie');
    headers.set('cookie', [...(existing ? [existing] : []), ...event.cookies].join('; '));
  }
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  // The function's own domain, never the Host header: an odd Host can't break the URL.
  const url = requestUrl(`https://${event.requestContext.domainName}`, `${event.rawPath}${query}`);
  if (url === undefined) return errorResponse(badRequestTarget());
  const hasBody = method !== 'GET' && method !== 'HEAD' && event.body !== undefined;
  return new Request(url, {
    method,
    headers,
    body: hasBody ? (event.isBase64Encoded ? Buffer.from(event.body!, 'base64') : event.body) : undefined,
    signal,
  });
}

/**
 * The Response as middy's streaming result. Each body chunk becomes one write to the response
 * stream as soon as the gateway produces it (SSE flows token by token). If the stream is torn
 * down before the body ends (the client went away), the invocation is aborted, which stops generation.
 */
export function toStreamingResult(response: Response, invocation: Invocation): StreamingResult {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  return {
    statusCode: response.status,
    headers,
    ...(cookies.length > 0 ? { cookies } : {}),
    body: bodyReadable(response.body, invocation),
  };
}

/** The middy-wrapped handler for a function URL with InvokeMode RESPONSE_STREAM. */
export function streamingHandler(gateway: Gateway): StreamingLambdaHandler {
  const invocations = new WeakMap<Context, Invocation>();
  const streamed = middy<LambdaFunctionURLEvent, StreamingResult>({ streamifyResponse: true }).handler(
    async (event, context, { signal: deadline }) => {
      const invocation = invocations.get(context) ?? new Invocation();
      // middy aborts `deadline` just before the function's timeout: generation stops and settles.
      const signal = AbortSignal.any([invocation.abort.signal, deadline]);
      const request = toRequest(event, signal);
      const response = request instanceof Response ? request : await gateway(request, invocation);
      return toStreamingResult(response, invocation);
    },
  ) as unknown as StreamingLambdaHandler;
  // middy writes and ends the stream; the invocation may only end once the gateway's work has too.
  return awslambda.streamifyResponse(async (event, responseStream, context) => {
    const invocation = new Invocation();
    invocations.set(context, invocation);
    try {
      await streamed(event, responseStream, context);
    } finally {
      await invocation.drain();
    }
  });
}

/**
 * A pull-based Node stream over the web body: reads a chunk only when the response stream wants
 * one, so nothing is buffered ahead of the client. Object mode lets an empty body still make one
 * (empty) write: the runtime sends the prelude, and with it the status, on the first write only.
 */
function bodyReadable(body: ReadableStream<Uint8Array> | null, invocation: Invocation): Readable {
  const reader = body?.getReader();
  let ended = false;
  let wrote = false;
  return new Readable({
    objectMode: true,
    highWaterMark: 0,
    async read() {
      try {
        const next = reader ? await reader.read() : ({ done: true } as const);
        if (next.done) {
          ended = true;
          if (!wrote) this.push(Buffer.alloc(0));
          this.push(null);
          return;
        }
        wrote = true;
        this.push(Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength));
      } catch (error) {
        this.destroy(error as Error);
      }
    },
    destroy(error, callback) {
      if (!ended) {
        // The default reason, an AbortError, is what the gateway reports as a closed request (499).
        invocation.abort.abort();
        // Cancelling runs the gateway's clean-up (settling, the log line): the invocation waits for it.
        if (reader) invocation.waitUntil(reader.cancel(error ?? undefined));
      }
      callback(error);
    },
  });
}
