// Starts s3rver, a real S3-compatible server on the local filesystem, for integration tests:
// 127.0.0.1 on a free port, a fresh temp directory, one bucket, and a log of the requests it served.
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';

/** s3rver's built-in account; it checks SigV4 signatures against this key pair. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** One request as s3rver received it; `key` is the object key (path-style URL without the bucket). */
export interface S3rverRequest {
  method: string;
  bucket: string;
  key: string;
  range?: string;
}

export interface S3rverHandle {
  endpoint: string;
  bucket: string;
  /** Every request served so far, in arrival order. */
  readonly requests: S3rverRequest[];
  /** A client for this server: path-style, fixed dummy credentials, us-east-1. */
  client(): S3Client;
  stop(): Promise<void>;
}

// s3rver ships no type declarations; this is the part of its API the tests use.
interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: Server;
}
type S3rverConstructor = new (options: S3rverOptions) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export async function startS3rver(bucket = 'aigw-models'): Promise<S3rverHandle> {
  const directory = await mkdtemp(path.join(tmpdir(), 'aigw-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const requests: S3rverRequest[] = [];
  server.httpServer.on('request', (req: IncomingMessage) => requests.push(describeRequest(req)));
  const clients: S3Client[] = [];
  return {
    endpoint,
    bucket,
    requests,
    client() {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        // s3rver predates flexible checksums and would store aws-chunked trailers as object bytes.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.destroy();
      // Keep-alive sockets of clients made elsewhere would hold close() open.
      const closed = server.close();
      server.httpServer.closeAllConnections();
      await closed;
      await rm(directory, { recursive: true, force: true });
    },
  };
}

function describeRequest(req: IncomingMessage): S3rverRequest {
  const url = new URL(req.url ?? '/', 'http://s3rver');
  const [, bucket = '', ...key] = url.pathname.split('/');
  const range = req.headers.range;
  return {
    method: req.method ?? '',
    bucket,
    key: decodeURIComponent(key.join('/')),
    ...(range === undefined ? {} : { range }),
  };
}
