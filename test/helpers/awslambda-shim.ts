// The Lambda Node.js runtime's `awslambda` global, as the runtime interface client implements it,
// and an invoker that drives a streaming handler the way the runtime does, recording every byte.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';
import type { LambdaFunctionURLEvent, StreamingLambdaHandler, StreamingPrelude } from '../../src/adapters/lambda-streaming.js';

/** The content type HttpResponseStream.from() sets: a JSON prelude, 8 NUL bytes, then the body. */
export const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const DELIMITER_LENGTH = 8;
const STREAMING_MARK = Symbol('aws.lambda.streamifyResponse');

type FirstWriteHook = (write: (chunk: string | Uint8Array) => void) => void;

/**
 * The runtime's response stream: a Writable whose first write is preceded by whatever
 * `_onBeforeFirstWrite` writes (the prelude), and whose content type is fixed once writing began.
 */
export class RecordedResponseStream extends Writable {
  contentType = 'application/octet-stream';
  _onBeforeFirstWrite?: FirstWriteHook;
  /** Every chunk that reached the wire, in order. */
  readonly chunks: Buffer[] = [];
  /** How many of `chunks` the prelude hook wrote (JSON, then the delimiter). */
  preludeChunks = 0;
  /** Called after each body chunk reached the wire. */
  onBodyWrite?: (chunk: Buffer, index: number, stream: RecordedResponseStream) => void;
  private writing = false;

  setContentType(contentType: string): void {
    if (this.writing) throw new Error('Cannot set content-type, too late.');
    this.contentType = contentType;
  }

  override write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    // The runtime JSON-encodes anything that is not a string, Buffer or plain Uint8Array.
    const data = typeof chunk === 'string' || Buffer.isBuffer(chunk) || (chunk as object)?.constructor === Uint8Array ? chunk : JSON.stringify(chunk);
    if (!this.writing && this._onBeforeFirstWrite) {
      this._onBeforeFirstWrite((prelude) => {
        this.preludeChunks++;
        super.write(prelude);
      });
    }
    this.writing = true;
    return super.write(data as string, encoding as BufferEncoding, callback as (error?: Error | null) => void);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    callback();
    const index = this.chunks.length - 1 - this.preludeChunks;
    if (index >= 0) this.onBodyWrite?.(this.chunks[this.chunks.length - 1], index, this);
  }

  /** What a client going away looks like from inside the function: the stream errors. */
  disconnect(): void {
    this.destroy(new Error('the client closed the connection'));
  }
}

class HttpResponseStream {
  static from(stream: RecordedResponseStream, prelude: Record<string, unknown>): RecordedResponseStream {
    stream.setContentType(PRELUDE_CONTENT_TYPE);
    const json = JSON.stringify(prelude);
    stream._onBeforeFirstWrite = (write) => {
      write(json);
      write(new Uint8Array(DELIMITER_LENGTH));
    };
    return stream;
  }
}

function streamifyResponse<T extends (...args: never[]) => unknown>(handler: T): T {
  Object.defineProperty(handler, STREAMING_MARK, { value: true });
  return handler;
}

/** Puts `awslambda` on globalThis (idempotent); done on import, before middy or a function module reads it. */
export function installAwsLambdaShim(): void {
  Object.assign(globalThis, { awslambda: { streamifyResponse, HttpResponseStream } });
}
installAwsLambdaShim();

export interface StreamedInvocation {
  /** The stream's content type: PRELUDE_CONTENT_TYPE when the handler used HttpResponseStream.from. */
  contentType: string;
  /** Parsed from the bytes: the JSON before the 8 NUL bytes. */
  prelude?: StreamingPrelude;
  /** Everything written, as the runtime forwards it. */
  bytes: Buffer;
  /** The bytes after the prelude and its delimiter. */
  body: Buffer;
  /** One entry per write the handler made after the prelude. */
  bodyWrites: Buffer[];
  /** Why the invocation failed, as the runtime would report it (handler rejection, stream not ended). */
  error?: unknown;
}

export interface InvokeOptions {
  context?: Partial<Context>;
  /** Sees each body write as it happens; may call stream.disconnect(). */
  onBodyWrite?: (chunk: Buffer, index: number, stream: RecordedResponseStream) => void;
}

/** Invokes a streaming handler as the runtime does: `(event, responseStream, context)`, then checks the stream ended. */
export async function invokeStreaming(
  handler: StreamingLambdaHandler,
  event: LambdaFunctionURLEvent,
  options: InvokeOptions = {},
): Promise<StreamedInvocation> {
  if (!(handler as unknown as Record<symbol, unknown>)[STREAMING_MARK]) {
    throw new Error('the handler is not wrapped in awslambda.streamifyResponse: the runtime would buffer its response');
  }
  const stream = new RecordedResponseStream();
  stream.onBodyWrite = options.onBodyWrite;
  let error: unknown;
  try {
    await handler(event, stream as never, lambdaContext(options.context));
    if (!stream.writableFinished) error = new Error('Response stream is not finished.');
  } catch (caught) {
    error = caught;
  }
  return { ...parseWire(stream), ...(error === undefined ? {} : { error }) };
}

function parseWire(stream: RecordedResponseStream): Omit<StreamedInvocation, 'error'> {
  const bytes = Buffer.concat(stream.chunks);
  const bodyWrites = stream.chunks.slice(stream.preludeChunks);
  if (stream.contentType !== PRELUDE_CONTENT_TYPE) return { contentType: stream.contentType, bytes, body: bytes, bodyWrites };
  // JSON never contains a NUL byte, so the first run of eight ends the prelude.
  const end = bytes.indexOf(Buffer.alloc(DELIMITER_LENGTH));
  if (end < 0) return { contentType: stream.contentType, bytes, body: Buffer.alloc(0), bodyWrites };
  return {
    contentType: stream.contentType,
    prelude: JSON.parse(bytes.subarray(0, end).toString('utf8')) as StreamingPrelude,
    bytes,
    body: bytes.subarray(end + DELIMITER_LENGTH),
    bodyWrites,
  };
}

function lambdaContext(overrides: Partial<Context> = {}): Context {
  const deadline = Date.now() + 900_000;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'aigw-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:aigw-test',
    memoryLimitInMB: '1024',
    awsRequestId: crypto.randomUUID(),
    logGroupName: '/aws/lambda/aigw-test',
    logStreamName: '2026/01/01/[$LATEST]test',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
    ...overrides,
  };
}

const FIXTURES = new URL('../fixtures/lambda/', import.meta.url);

/** A function-URL event from test/fixtures/lambda/<name>.json, `{{NAME}}` placeholders replaced. */
export function functionUrlEvent(name: string, replacements: Record<string, string> = {}): LambdaFunctionURLEvent {
  let text = readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8');
  for (const [key, value] of Object.entries(replacements)) text = text.replaceAll(`{{${key}}}`, value);
  const leftover = /\{\{(\w+)\}\}/.exec(text);
  if (leftover) throw new Error(`fixture ${name}: no value for {{${leftover[1]}}}`);
  return JSON.parse(text) as LambdaFunctionURLEvent;
}
