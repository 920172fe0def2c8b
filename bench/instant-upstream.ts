// An OpenAI-compatible upstream that answers at once (bench/gateway.ts runs it in its own process):
// POST /v1/chat/completions, whole or streamed (SSE with a usage chunk when asked), a fixed
// three-token reply. What a gateway in front of it adds is then nearly all the gateway's own time.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const PIECES = ['Hello', ' from', ' upstream'];
const USAGE = { prompt_tokens: 8, completion_tokens: PIECES.length, total_tokens: 8 + PIECES.length };

const server = createServer((req, res) => {
  if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', param: null, code: null } }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { model?: string; stream?: boolean; stream_options?: { include_usage?: boolean } };
    const meta = { id: 'chatcmpl-instant', created: Math.floor(Date.now() / 1000), model: body.model ?? 'instant' };
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...meta,
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: PIECES.join('') }, logprobs: null, finish_reason: 'stop' }],
          usage: USAGE,
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (choice: object, usage?: object) => `data: ${JSON.stringify({ ...meta, object: 'chat.completion.chunk', choices: [choice], ...(usage ? { usage } : {}) })}\n\n`;
    let out = chunk({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null });
    for (const piece of PIECES) out += chunk({ index: 0, delta: { content: piece }, finish_reason: null });
    out += chunk({ index: 0, delta: {}, finish_reason: 'stop' });
    if (body.stream_options?.include_usage) out += `data: ${JSON.stringify({ ...meta, object: 'chat.completion.chunk', choices: [], usage: USAGE })}\n\n`;
    res.end(`${out}data: [DONE]\n\n`);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
