import { Stream } from 'openai/streaming';
import { APIError } from 'openai/error';
import { describe, expect, it } from 'vitest';
import { SSE_HEADERS, sseResponseBody } from '../../src/api/sse.js';
import { EngineError } from '../../src/engine/errors.js';

const decoder = new TextDecoder();

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

async function* fromArray(events: object[]): AsyncGenerator<object> {
  for (const event of events) yield event;
}

/** Lets every queued microtask and pending I/O callback run, so an eager producer would show. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('sseResponseBody', () => {
  it('frames each event as one data line and ends with [DONE], byte for byte', async () => {
    const body = sseResponseBody(fromArray([{ a: 1 }, { text: 'line\nbreak "quoted" é' }]));
    expect(await readAll(body)).toBe('data: {"a":1}\n\n' + 'data: {"text":"line\\nbreak \\"quoted\\" é"}\n\n' + 'data: [DONE]\n\n');
  });

  it('sends only [DONE] for an empty source', async () => {
    expect(await readAll(sseResponseBody(fromArray([])))).toBe('data: [DONE]\n\n');
  });

  it('encodes UTF-8 bytes', async () => {
    const bytes: number[] = [];
    for await (const chunk of sseResponseBody(fromArray([{ t: '😀' }]))) bytes.push(...chunk);
    expect(Buffer.from(bytes).equals(Buffer.from('data: {"t":"😀"}\n\ndata: [DONE]\n\n', 'utf8'))).toBe(true);
  });

  it('pulls from the source only as the client reads', async () => {
    let produced = 0;
    async function* counting(): AsyncGenerator<object> {
      for (let i = 0; i < 100; i++) {
        produced++;
        yield { i };
      }
    }
    const reader = sseResponseBody(counting()).getReader();
    await settle();
    expect(produced).toBe(0);
    const first = await reader.read();
    expect(decoder.decode(first.value)).toBe('data: {"i":0}\n\n');
    await settle();
    expect(produced).toBe(1);
    await reader.read();
    await reader.read();
    await settle();
    expect(produced).toBe(3);
    await reader.cancel();
  });

  it('calls return() on the source when the client cancels between events', async () => {
    let closed = false;
    let produced = 0;
    async function* source(): AsyncGenerator<object> {
      try {
        for (;;) yield { n: produced++ };
      } finally {
        closed = true;
      }
    }
    const reader = sseResponseBody(source()).getReader();
    await reader.read();
    await reader.read();
    await reader.cancel(new Error('client went away'));
    expect(closed).toBe(true);
    expect(produced).toBe(2);
  });

  it('stops the source when the client cancels while an event is being produced', async () => {
    const step = deferred<void>();
    let closed = false;
    let resumedAfterCancel = false;
    async function* source(): AsyncGenerator<object> {
      try {
        yield { n: 0 };
        await step.promise;
        yield { n: 1 };
        resumedAfterCancel = true;
        yield { n: 2 };
      } finally {
        closed = true;
      }
    }
    const reader = sseResponseBody(source()).getReader();
    await reader.read();
    const pending = reader.read();
    await settle();
    const cancelling = reader.cancel();
    step.resolve();
    await cancelling;
    expect(closed).toBe(true);
    expect(resumedAfterCancel).toBe(false);
    expect((await pending).done).toBe(true);
  });

  it('passes cancel to a plain async iterator too', async () => {
    let returned = 0;
    const iterable: AsyncIterable<object> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: false, value: { x: 1 } }),
        return: async () => {
          returned++;
          return { done: true, value: undefined };
        },
      }),
    };
    const reader = sseResponseBody(iterable).getReader();
    await reader.read();
    await reader.cancel();
    expect(returned).toBe(1);
  });

  it('writes an error mid-stream as one OpenAI error event and closes without [DONE]', async () => {
    async function* failing(): AsyncGenerator<object> {
      yield { ok: true };
      throw new EngineError('generation_failed', 'onnxruntime failed during a decoder step: out of memory');
    }
    const text = await readAll(sseResponseBody(failing()));
    const events = text.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(2);
    expect(events[0]).toBe('data: {"ok":true}');
    expect(JSON.parse(events[1]!.slice('data: '.length))).toEqual({
      error: {
        message: 'The model failed while generating the completion. Please try again.',
        type: 'server_error',
        param: null,
        code: 'generation_failed',
      },
    });
    expect(text).not.toContain('[DONE]');
    expect(text).not.toContain('out of memory');
  });

  it('lets the caller shape (and log) the error event', async () => {
    const seen: unknown[] = [];
    async function* failing(): AsyncGenerator<object> {
      throw new Error('boom');
    }
    const text = await readAll(
      sseResponseBody(failing(), {
        onError: (error) => {
          seen.push(error);
          return { error: { message: 'custom', type: 'server_error', param: null, code: 'x' } };
        },
      }),
    );
    expect(text).toBe('data: {"error":{"message":"custom","type":"server_error","param":null,"code":"x"}}\n\n');
    expect((seen[0] as Error).message).toBe('boom');
  });

  it('is read by the official OpenAI SDK, which raises the error event as an APIError', async () => {
    const ok = new Response(sseResponseBody(fromArray([{ id: 'a' }, { id: 'b' }])), { headers: SSE_HEADERS });
    const ids: string[] = [];
    for await (const item of Stream.fromSSEResponse<{ id: string }>(ok, new AbortController())) ids.push(item.id);
    expect(ids).toEqual(['a', 'b']);

    async function* failing(): AsyncGenerator<object> {
      yield { id: 'a' };
      throw new EngineError('model_load_failed', 'missing /tmp/models/x.onnx');
    }
    const bad = new Response(sseResponseBody(failing()), { headers: SSE_HEADERS });
    const stream = Stream.fromSSEResponse<{ id: string }>(bad, new AbortController());
    const seen: string[] = [];
    const error = await (async () => {
      try {
        for await (const item of stream) seen.push(item.id);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(seen).toEqual(['a']);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).code).toBe('model_unavailable');
  });
});

describe('SSE_HEADERS', () => {
  it('declares an event stream that proxies must not buffer', () => {
    expect(SSE_HEADERS).toEqual({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
  });
});
