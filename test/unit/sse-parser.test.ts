import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '../../src/backends/sse-parser.js';

const encoder = new TextEncoder();

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function parse(chunks: Uint8Array[] | string): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of parseSse(streamOf(typeof chunks === 'string' ? [encoder.encode(chunks)] : chunks))) events.push(event);
  return events;
}

/** Cuts bytes at the given offsets (sorted, deduplicated, inside the array). */
function cut(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.slice(start, point));
    start = point;
  }
  return chunks;
}

describe('parseSse', () => {
  it('reads OpenAI-style data events and the [DONE] marker', async () => {
    expect(await parse('data: {"a":1}\n\ndata: [DONE]\n\n')).toEqual([
      { event: 'message', data: '{"a":1}' },
      { event: 'message', data: '[DONE]' },
    ]);
  });

  it('joins data lines, keeps event types and ids, skips comments and unknown fields', async () => {
    const text = ': keep-alive\nevent: error\nid: 7\ndata: first\ndata:second\nretry: 10\nfoo: bar\n\n';
    expect(await parse(text)).toEqual([{ event: 'error', data: 'first\nsecond', id: '7' }]);
  });

  it('accepts CRLF, CR and LF line ends alike', async () => {
    const expected = [
      { event: 'message', data: 'a' },
      { event: 'message', data: 'b' },
    ];
    expect(await parse('data: a\r\n\r\ndata: b\r\n\r\n')).toEqual(expected);
    expect(await parse('data: a\r\rdata: b\r\r')).toEqual(expected);
    expect(await parse('data: a\n\ndata: b\n\n')).toEqual(expected);
  });

  it('dispatches an empty data line but drops an event without data, and an event cut off at the end', async () => {
    expect(await parse('data:\n\nevent: ping\n\ndata: unfinished')).toEqual([{ event: 'message', data: '' }]);
  });

  it('gives the same events however the bytes are chunked (CRLF and UTF-8 split across chunks)', async () => {
    const text = 'data: {"text":"海 🌊"}\r\n\r\nevent: x\ndata: é\r\rdata: x\r\ndata: y\r\n\r\ndata: [DONE]\n\n';
    const bytes = encoder.encode(text);
    const whole = await parse(text);
    expect(whole).toHaveLength(4);
    expect(whole[2].data).toBe('x\ny');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (offsets) => {
        expect(await parse(cut(bytes, offsets))).toEqual(whole);
      }),
    );
  });

  it('cancels the body when the reader stops early', async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(encoder.encode('data: more\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const event of parseSse(body)) {
      expect(event.data).toBe('more');
      break;
    }
    expect(cancelled).toBe(true);
  });
});
