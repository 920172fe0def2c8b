import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiError, errorResponse } from '../api/errors.js';
import { badRequestTarget, isUnsupportedMethod, requestUrl, unsupportedMethod } from '../api/request-target.js';
import type { Gateway, GatewayContext } from '../gateway.js';
import { answerOnSocket, answeredOnSocket, httpParseError } from './client-error.js';

export interface NodeServer {
  url: string;
  port: number;
  /** Stops accepting connections, lets in-flight responses finish for up to graceMs, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

/** Carries the gateway over node:http: IncomingMessage → Request, Response → ServerResponse. */
export async function serveNode(gateway: Gateway, options: { host: string; port: number }): Promise<NodeServer> {
  const inFlight = new Set<AbortController>();
  // Work requests left to finish after their responses (see GatewayContext.waitUntil).
  const background = new Set<Promise<void>>();
  const runtime = {
    waitUntil(work: Promise<void>) {
      const tracked = work.catch(() => undefined).finally(() => background.delete(tracked));
      background.add(tracked);
    },
  };
  // Each socket's latest response: once it has started, a parse error can only close the connection.
  const responses = new WeakMap<Socket, ServerResponse>();
  let origin = '';
  // Host is checked in handle(), so a request without one gets a body with its 400 (Node's own has none).
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    const controller = new AbortController();
    inFlight.add(controller);
    responses.set(req.socket, res);
    // A client that goes away before the response is complete aborts generation.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
      inFlight.delete(controller);
    });
    handle(gateway, req, res, controller.signal, origin, runtime).catch(() => {
      // The gateway answers every error itself; this is the last resort for a bug in between.
      if (res.headersSent) res.destroy();
      else void send(res, errorResponse(new ApiError(500, 'The server had an error while processing your request. Sorry about that!')));
    });
  });
  // What Node would otherwise answer with an empty body or a dropped connection: bad framing,
  // headers over the size limit, request timeouts, CONNECT, an Expect it can't meet.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (responses.get(socket)?.headersSent || error.code === 'ECONNRESET') socket.destroy();
    else answerOnSocket(socket, httpParseError(error));
  });
  server.on('connect', (req: IncomingMessage, socket: Socket) => answerOnSocket(socket, unsupportedMethod(req.method ?? 'CONNECT')));
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    void send(res, errorResponse(new ApiError(417, `Expect: ${req.headers.expect} is not supported; send the request without it.`, { code: 'expectation_failed' })));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  origin = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  return {
    url: origin,
    port: address.port,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const controller of inFlight) controller.abort();
        server.closeAllConnections();
      }, graceMs);
      await closed;
      clearTimeout(timer);
      await Promise.all(background);
    },
  };
}

async function handle(
  gateway: Gateway,
  req: IncomingMessage,
  res: ServerResponse,
  signal: AbortSignal,
  origin: string,
  runtime: GatewayContext,
): Promise<void> {
  const method = req.method ?? 'GET';
  if (req.httpVersion === '1.1' && req.headers.host === undefined) {
    return send(res, errorResponse(new ApiError(400, 'HTTP/1.1 requests must carry a Host header.', { code: 'missing_host' })));
  }
  if (isUnsupportedMethod(method)) return send(res, errorResponse(unsupportedMethod(method)));
  // The URL comes from the listening address and the target's path, never from the Host header.
  const url = requestUrl(origin, req.url ?? '/');
  if (url === undefined) return send(res, errorResponse(badRequestTarget()));
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const request = new Request(url, {
    method,
    headers: toHeaders(req),
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    signal,
    // Required by undici for a streamed request body.
    duplex: 'half',
  } as RequestInit);
  return send(res, await gateway(request, runtime));
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  // Already answered on the socket (a parse error in the body): this response has nowhere to go.
  if (res.headersSent || res.destroyed || answeredOnSocket(res.socket)) {
    await response.body?.cancel().catch(() => undefined);
    return;
  }
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.setHeader(name, value));
  if (!response.body) {
    res.end();
    return;
  }
  res.flushHeaders();
  // pipeline() applies backpressure and cancels the web stream if the socket closes early.
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), res).catch(() => undefined);
}

function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return headers;
}
