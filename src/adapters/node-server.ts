import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Gateway, GatewayContext } from '../gateway.js';

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
  const server = createServer((req, res) => {
    const controller = new AbortController();
    inFlight.add(controller);
    // A client that goes away before the response is complete aborts generation.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
      inFlight.delete(controller);
    });
    handle(gateway, req, res, controller.signal, options.host, runtime).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    port,
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
  host: string,
  runtime: GatewayContext,
): Promise<void> {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const request = new Request(`http://${req.headers.host ?? host}${req.url ?? '/'}`, {
    method: req.method,
    headers: toHeaders(req),
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
    signal,
    // Required by undici for a streamed request body.
    duplex: 'half',
  } as RequestInit);
  const response = await gateway(request, runtime);
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
