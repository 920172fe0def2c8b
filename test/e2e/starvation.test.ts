// Big prompts must not stall everyone: with six 1 MB prompts in flight (one word, and many words;
// the demo model's context is far smaller, so the byte bound refuses them before tokenizing),
// /healthz and a small chat completion still answer within a liveness bound. The real gateway,
// DynamoDB Local, the demo ONNX model. (Tokenizing in pieces is covered in prompt-encoding.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

/**
 * Liveness, not speed: before the fix one 1 MB prompt blocked the event loop for ~3.6 s and six of
 * them made /healthz take 5-10 s and a 4-token chat 13-42 s. Generous for a loaded 2-core machine.
 */
const HEALTHZ_BOUND_MS = 2_000;
const SMALL_CHAT_BOUND_MS = 8_000;

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({ cache: false, maxRequestBytes: 2 * 1024 * 1024 });
});

afterAll(async () => {
  await gw?.close();
});

function chat(content: string, maxTokens = 4): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content }], max_tokens: maxTokens }),
  });
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

describe('big prompts in flight', () => {
  it('keep /healthz and a small chat answering, and each big one gets a 400 context_length_exceeded', async () => {
    const oneWord = 'a'.repeat(1024 * 1024);
    const words = 'lorem ipsum dolor sit amet '.repeat(38_000); // ~1 MB of many pre-tokens
    const big = [oneWord, words, oneWord, words, oneWord, words].map((content) => chat(content));

    // Measured while the big ones are being read, rendered and refused.
    const health = await timed(() => fetch(`${gw.url}/healthz`));
    const small = await timed(async () => {
      const response = await chat('hi');
      return { status: response.status, body: await response.text() };
    });

    const answers = await Promise.all(big.map(async (r) => ({ status: (await r).status, body: (await (await r).json()) as { error?: { code: string } } })));
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.body.error?.code).toBe('context_length_exceeded');
    }
    expect(health.value.status).toBe(200);
    expect(health.ms).toBeLessThan(HEALTHZ_BOUND_MS);
    expect(small.value.status, small.value.body).toBe(200);
    expect(small.ms).toBeLessThan(SMALL_CHAT_BOUND_MS);
  });
});
