// Answers for requests Node's HTTP parser refuses before any request object exists: written
// straight to the socket, in OpenAI's error shape, and the connection closed (its framing is lost).
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError, errorBody } from '../api/errors.js';

/** Node's parser and timeout errors as the status a client should see. */
export function httpParseError(error: NodeJS.ErrnoException): ApiError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'The request headers are too large.', { code: 'request_headers_too_large' });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'The request took too long to arrive.', { code: 'request_timeout' });
    default:
      return new ApiError(400, `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'}).`, { code: 'invalid_http_request' });
  }
}

const answered = new WeakSet<Socket>();

/** True once answerOnSocket wrote to this socket: the request on it gets no other response. */
export function answeredOnSocket(socket: Socket | null): boolean {
  return socket !== null && answered.has(socket);
}

/** Writes one complete error response and closes the connection once it is sent. */
export function answerOnSocket(socket: Socket, error: ApiError): void {
  answered.add(socket);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(error));
  const headers = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(error.headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
  // Half-closed: the client reads the answer, then closes; one that never does is cut off.
  setTimeout(() => socket.destroy(), 2_000).unref();
}
