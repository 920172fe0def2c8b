// Test helper: sends raw bytes over a TCP socket (no HTTP client to tidy them up) and reads back
// the first HTTP response, or reports that the connection closed without one.
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The response to `bytes`, or undefined when the server closed the connection without answering. */
export async function rawExchange(port: number, bytes: string | Buffer, waitMs = 30_000): Promise<RawResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (response: RawResponse | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(response);
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no complete response within ${waitMs} ms (got ${JSON.stringify(received.toString('latin1').slice(0, 200))})`));
    }, waitMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const response = parseResponse(received, false);
      if (response) finish(response);
    });
    // A server that answers and closes while we are still sending resets the socket: what it sent still counts.
    socket.on('error', () => finish(parseResponse(received, true)));
    socket.on('close', () => finish(parseResponse(received, true)));
  });
}

/** A complete response in `data` (a body without length runs to the end of the connection). */
function parseResponse(data: Buffer, closed: boolean): RawResponse | undefined {
  let text = data.toString('latin1');
  // Interim responses (100 Continue) come before the real one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(text) && text.includes('\r\n\r\n')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine!);
  if (!match) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(match[1]);
  const rest = Buffer.from(text.slice(headEnd + 4), 'latin1');
  if (status === 204 || status === 304) return { status, headers, body: '' };
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length && !closed) return undefined;
    return { status, headers, body: rest.subarray(0, length).toString('utf8') };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const body = dechunk(rest);
    if (body === undefined && !closed) return undefined;
    return { status, headers, body: body ?? rest.toString('utf8') };
  }
  return closed ? { status, headers, body: rest.toString('utf8') } : undefined;
}

function dechunk(data: Buffer): string | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd === -1) return undefined;
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0) return Buffer.concat(parts).toString('utf8');
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
}

/** True when `body` is OpenAI's error shape: { error: { message, type, param, code } }. */
export function isOpenAiError(body: string): boolean {
  try {
    const { error } = JSON.parse(body) as { error?: Record<string, unknown> };
    return (
      typeof error === 'object' &&
      error !== null &&
      typeof error.message === 'string' &&
      typeof error.type === 'string' &&
      'param' in error &&
      'code' in error
    );
  } catch {
    return false;
  }
}
