/** One server-sent event: its type (`message` unless an `event:` line said otherwise) and data lines joined by `\n`. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Reads an event stream as the WHATWG spec describes it: lines end in CRLF, LF or CR, `:` starts
 * a comment, a blank line dispatches the event, an event without data is dropped, and an event
 * cut off by the end of the stream is discarded. Stopping the iteration cancels the body.
 */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let pending = emptyEvent();
  let done = false;
  try {
    while (!done) {
      const chunk = await reader.read();
      done = chunk.done;
      buffer += done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      for (;;) {
        const end = lineEnd(buffer, done);
        if (!end) break;
        const line = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end.length);
        if (line === '') {
          if (pending.data.length > 0) yield dispatch(pending);
          pending = emptyEvent();
        } else {
          applyLine(pending, line);
        }
      }
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

interface PendingEvent {
  event: string;
  data: string[];
  id?: string;
}

function emptyEvent(): PendingEvent {
  return { event: '', data: [] };
}

function dispatch(pending: PendingEvent): SseEvent {
  const event: SseEvent = { event: pending.event || 'message', data: pending.data.join('\n') };
  if (pending.id !== undefined) event.id = pending.id;
  return event;
}

/** The next line terminator; a CR at the very end may be the first half of a CRLF still in flight. */
function lineEnd(buffer: string, final: boolean): { index: number; length: number } | undefined {
  const index = buffer.search(/[\r\n]/);
  if (index < 0) return undefined;
  if (buffer[index] === '\n') return { index, length: 1 };
  if (index + 1 < buffer.length) return { index, length: buffer[index + 1] === '\n' ? 2 : 1 };
  return final ? { index, length: 1 } : undefined;
}

function applyLine(pending: PendingEvent, line: string): void {
  if (line.startsWith(':')) return;
  const colon = line.indexOf(':');
  const field = colon < 0 ? line : line.slice(0, colon);
  let value = colon < 0 ? '' : line.slice(colon + 1);
  if (value.startsWith(' ')) value = value.slice(1);
  if (field === 'data') pending.data.push(value);
  else if (field === 'event') pending.event = value;
  else if (field === 'id' && !value.includes('\0')) pending.id = value;
}
