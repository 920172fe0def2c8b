// A deliberately flaky OpenAI-compatible server on 127.0.0.1: on command it refuses connections,
// stalls, answers 5xx or 429, or cuts or stalls a stream after N tokens. Its replies are
// predictable: token i of server "a" is "a<i> ", and a continued reply (vLLM's
// continue_final_message, or a completion prompt ending in the partial reply) goes on from the
// index where the partial reply stops, so a test can tell exactly who wrote what.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FlakyBehavior =
  | { kind: 'ok' }
  /** The connection is reset as soon as it opens. */
  | { kind: 'refuse' }
  /** Reads the request and never answers. */
  | { kind: 'stall' }
  /** Answers this status with an OpenAI error body. */
  | { kind: 'status'; status: number; code?: string; message?: string }
  /** Streams this many tokens, then destroys the connection. */
  | { kind: 'cut'; afterTokens: number }
  /** Streams this many tokens, then sends nothing more (the connection stays open). */
  | { kind: 'stall_after'; afterTokens: number };

export interface FlakyRequest {
  path: string;
  body: Record<string, unknown>;
  /** How it was answered. */
  behavior: FlakyBehavior['kind'];
}

export interface FlakyUpstream {
  baseUrl: string;
  /** Every request received, in order (refused connections are not requests). */
  requests: FlakyRequest[];
  /** How the next requests go, in order; after them, `always`'s behavior. */
  next(...behaviors: FlakyBehavior[]): void;
  always(behavior: FlakyBehavior): void;
  /** Back to answering normally: queued behaviors dropped, requests forgotten. */
  reset(): void;
  close(): Promise<void>;
}

export interface FlakyUpstreamOptions {
  /** The token prefix of this server's replies, e.g. "a" for "a0 a1 ...". */
  label: string;
  /** Tokens of a whole reply when max_tokens does not stop it first. */
  replyTokens?: number;
  /** A pause before each token, to keep a request in flight for a while. */
  tokenDelayMs?: number;
}

export async function startFlakyUpstream(options: FlakyUpstreamOptions): Promise<FlakyUpstream> {
  const replyTokens = options.replyTokens ?? 8;
  const queue: FlakyBehavior[] = [];
  let standing: FlakyBehavior = { kind: 'ok' };
  const requests: FlakyRequest[] = [];
  const sockets = new Set<Socket>();
  const take = () => queue.shift() ?? standing;

  const server = createServer(async (req, res) => {
    const behavior = take();
    const body = await readJson(req);
    requests.push({ path: req.url ?? '', body, behavior: behavior.kind });
    await answer(behavior, req, res, body, options.label, replyTokens, options.tokenDelayMs ?? 0);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A refusal happens before any request is read: it is taken when the connection opens.
    if ((queue[0] ?? standing).kind === 'refuse') {
      queue.shift();
      socket.resetAndDestroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    next: (...behaviors) => queue.push(...behaviors),
    always: (behavior) => {
      standing = behavior;
    },
    reset: () => {
      queue.length = 0;
      requests.length = 0;
      standing = { kind: 'ok' };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

interface Message {
  role: string;
  content: string;
}

/** The reply so far (a partial assistant message, or a completion prompt's trailing tokens) as a token index. */
function startIndex(body: Record<string, unknown>): number {
  const messages = body.messages as Message[] | undefined;
  const partial = messages ? (body.continue_final_message === true ? messages.at(-1)!.content : '') : String(body.prompt ?? '');
  // Any server's tokens count: a reply started by "a" and continued by "b" goes on at "b3".
  return (partial.match(/[a-z]+\d+ /g) ?? []).length;
}

function promptTokens(body: Record<string, unknown>): number {
  const messages = body.messages as Message[] | undefined;
  const text = messages ? messages.map((m) => m.content).join(' ') : String(body.prompt ?? '');
  return text.split(/\s+/).filter((w) => w.length > 0).length;
}

async function answer(
  behavior: FlakyBehavior,
  req: IncomingMessage,
  res: ServerResponse,
  body: Record<string, unknown>,
  label: string,
  replyTokens: number,
  tokenDelayMs: number,
): Promise<void> {
  if (behavior.kind === 'stall') return; // the client's deadline ends it
  if (behavior.kind === 'status') {
    res.writeHead(behavior.status, { connection: 'close', 'content-type': 'application/json', ...(behavior.status === 429 ? { 'retry-after': '1' } : {}) });
    res.end(JSON.stringify({ error: { message: behavior.message ?? `flaky ${behavior.status}`, type: 'server_error', param: null, code: behavior.code ?? null } }));
    return;
  }
  const chat = req.url === '/v1/chat/completions';
  const start = startIndex(body);
  const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : Infinity;
  const count = Math.min(Math.max(replyTokens - start, 0), maxTokens);
  const finishReason = count === maxTokens && start + count < replyTokens ? 'length' : 'stop';
  const limit = behavior.kind === 'cut' || behavior.kind === 'stall_after' ? behavior.afterTokens : Infinity;

  // No keep-alive: each request gets a connection of its own, so `refuse` applies to the next request.
  res.writeHead(200, { connection: 'close', 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const base = { id: 'flaky-1', created: 1, model: String(body.model ?? label) };
  const send = (chunk: object) => res.write(`data: ${JSON.stringify({ ...base, ...chunk })}\n\n`);
  const delta = (text: string | undefined, finish: string | null) =>
    chat
      ? { object: 'chat.completion.chunk', choices: [{ index: 0, delta: text === undefined ? {} : { content: text }, finish_reason: finish }] }
      : { object: 'text_completion', choices: [{ index: 0, text: text ?? '', finish_reason: finish }] };

  if (chat) send({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  for (let i = 0; i <= count; i++) {
    // A cut may fall after the last token too, before the finish.
    if (i === limit) {
      if (behavior.kind === 'cut') res.destroy();
      return; // stall_after: the connection stays open and silent
    }
    if (i === count) break;
    send(delta(`${label}${start + i} `, null));
    // One token per write, so a cut after N tokens has sent exactly N.
    await new Promise((resolve) => (tokenDelayMs > 0 ? setTimeout(resolve, tokenDelayMs) : setImmediate(resolve)));
  }
  send(delta(undefined, finishReason));
  send({ object: chat ? 'chat.completion.chunk' : 'text_completion', choices: [], usage: { prompt_tokens: promptTokens(body), completion_tokens: count, total_tokens: promptTokens(body) + count } });
  res.end('data: [DONE]\n\n');
}
