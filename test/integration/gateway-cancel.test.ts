// A client that leaves before reading a byte of its stream: the body is cancelled before the
// event generator ever started. The model's place, the admission and the log must still close.
import { expect, it } from 'vitest';
import { engineBackend } from '../../src/backends/engine-backend.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway } from '../../src/gateway.js';
import { ensureTestModel } from '../helpers/test-models.js';

it('frees the model for the next request when a stream is cancelled before its first read', async () => {
  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  const logs: Record<string, unknown>[] = [];
  // One sequence at a time: a leaked place would block the second request for ever.
  const backend = engineBackend(model, 'm', { batchSize: 1 });
  const gateway = createGateway({
    backends: new Map([['m', backend]]),
    defaultModel: 'm',
    logger: { info: (message, ...extra) => logs.push(Object.assign({ message }, ...extra)) },
    maxRequestBytes: 1 << 20,
    logPrompts: false,
  });
  const ask = (stream: boolean) =>
    gateway(
      new Request('http://gateway/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 50, stream }),
      }),
    );

  const abandoned = await ask(true);
  expect(abandoned.status).toBe(200);
  await abandoned.body!.cancel();
  const requestId = abandoned.headers.get('x-request-id');
  expect(logs.find((l) => l.requestId === requestId)).toMatchObject({ status: 499 });

  const next = await ask(false);
  expect(next.status).toBe(200);
  expect(((await next.json()) as { object: string }).object).toBe('chat.completion');
});
