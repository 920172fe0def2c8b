// A Lambda control-plane endpoint on 127.0.0.1 speaking the service's REST API for the three calls
// `aigw deploy check` makes (GetAccountSettings, ListFunctions, GetFunctionConcurrency), for the
// real @aws-sdk/client-lambda: each region (read from the SigV4 credential scope) is an account
// with its own quota and functions.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RegionAccount {
  /** AccountLimit.ConcurrentExecutions. */
  limit: number;
  /** Functions already deployed, with their reserved concurrency (undefined: none). */
  functions?: Record<string, number | undefined>;
}

export interface LambdaAccountServer {
  endpoint: string;
  /** The account as seen from each region; a region left out answers like an unknown one (403). */
  readonly regions: Map<string, RegionAccount>;
  /** Every request: method, path and the region of its signature. */
  readonly requests: { method: string; path: string; region: string }[];
  stop(): Promise<void>;
}

/** Lambda's page size for ListFunctions is 50; a smaller one makes the client paginate. */
const PAGE_SIZE = 2;

export async function startLambdaAccountServer(): Promise<LambdaAccountServer> {
  const regions = new Map<string, RegionAccount>();
  const requests: { method: string; path: string; region: string }[] = [];

  const answer = (res: ServerResponse, status: number, body: object, errorType?: string) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-amzn-requestid': crypto.randomUUID(),
      ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
    });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://lambda');
    // Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/lambda/aws4_request, ...
    const scope = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/lambda\/aws4_request/.exec(req.headers.authorization ?? '');
    const region = scope?.[1] ?? '';
    requests.push({ method: req.method ?? '', path: url.pathname, region });
    const account = regions.get(region);
    if (!scope || !account) {
      answer(res, 403, { message: `no account set up for region "${region}"` }, 'AccessDeniedException');
      return;
    }
    const functions = Object.entries(account.functions ?? {});
    const reserved = functions.reduce((sum, [, value]) => sum + (value ?? 0), 0);

    if (req.method === 'GET' && /^\/2016-08-19\/account-settings\/?$/.test(url.pathname)) {
      answer(res, 200, {
        AccountLimit: {
          TotalCodeSize: 80_530_636_800,
          CodeSizeUnzipped: 262_144_000,
          CodeSizeZipped: 52_428_800,
          ConcurrentExecutions: account.limit,
          UnreservedConcurrentExecutions: account.limit - reserved,
        },
        AccountUsage: { TotalCodeSize: 0, FunctionCount: functions.length },
      });
      return;
    }
    if (req.method === 'GET' && /^\/2015-03-31\/functions\/?$/.test(url.pathname)) {
      const start = Number(url.searchParams.get('Marker') ?? '0');
      const page = functions.slice(start, start + PAGE_SIZE);
      answer(res, 200, {
        Functions: page.map(([name]) => ({ FunctionName: name, FunctionArn: `arn:aws:lambda:${region}:123456789012:function:${name}` })),
        ...(start + PAGE_SIZE < functions.length ? { NextMarker: String(start + PAGE_SIZE) } : {}),
      });
      return;
    }
    const concurrency = /^\/2019-09-30\/functions\/([^/]+)\/concurrency\/?$/.exec(url.pathname);
    if (req.method === 'GET' && concurrency) {
      const name = decodeURIComponent(concurrency[1]!);
      if (!(name in (account.functions ?? {}))) {
        answer(res, 404, { Type: 'User', message: `Function not found: ${name}` }, 'ResourceNotFoundException');
        return;
      }
      const value = account.functions![name];
      answer(res, 200, value === undefined ? {} : { ReservedConcurrentExecutions: value });
      return;
    }
    answer(res, 400, { message: `unsupported ${req.method} ${url.pathname}` }, 'InvalidRequestContentException');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    regions,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
