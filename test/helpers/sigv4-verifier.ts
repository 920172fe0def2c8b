// Stands in for AWS_IAM auth on a Lambda function URL: recomputes each request's SigV4 signature
// with the known credentials and refuses (403, AWS's body shape) what does not match, body included.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Gateway } from '../../src/gateway.js';

export interface VerifierCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SigV4VerifierOptions {
  credentials: VerifierCredentials;
  region: string;
  service: string;
  /** AWS refuses signatures older (or newer) than this. */
  maxSkewMs?: number;
}

export interface VerifiedGateway {
  gateway: Gateway;
  /** Why each refused request was refused, in order. */
  refusals: string[];
  /** How many requests passed verification. */
  accepted(): number;
}

const AUTHORIZATION = new RegExp(
  '^AWS4-HMAC-SHA256 Credential=([^/]+)/(\\d{8})/([^/]+)/([^/]+)/aws4_request, ?' +
    'SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$',
);

/** Wraps a gateway so only requests signed with `credentials` reach it. */
export function sigv4Verifier(inner: Gateway, options: SigV4VerifierOptions): VerifiedGateway {
  const refusals: string[] = [];
  let accepted = 0;
  const signer = new SignatureV4({
    service: options.service,
    region: options.region,
    credentials: options.credentials,
    sha256: Hash.bind(null, 'sha256'),
  });
  const refuse = (reason: string, message: string) => {
    refusals.push(reason);
    return Response.json({ Message: message }, { status: 403, headers: { 'x-amzn-errortype': 'AccessDeniedException' } });
  };

  const gateway: Gateway = async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    const match = request.headers.get('authorization')?.match(AUTHORIZATION);
    if (!match) return refuse('missing', 'Forbidden');
    const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = match;
    const amzDate = request.headers.get('x-amz-date') ?? '';
    const signingDate = parseAmzDate(amzDate);
    if (accessKeyId !== options.credentials.accessKeyId) {
      return refuse('unknown key', 'The security token included in the request is invalid.');
    }
    if (region !== options.region || service !== options.service || !signingDate || scopeDate !== amzDate.slice(0, 8)) {
      return refuse('scope', 'Credential should be scoped to a valid region and service.');
    }
    const skew = Math.abs(Date.now() - signingDate.getTime());
    if (skew > (options.maxSkewMs ?? 15 * 60_000)) return refuse('expired', 'Signature expired.');
    const signedHeaders = signedHeaderList.split(';');
    for (const required of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
      if (!signedHeaders.includes(required)) return refuse('unsigned header', `The ${required} header must be signed.`);
    }
    if (request.headers.get('x-amz-content-sha256') !== createHash('sha256').update(body).digest('hex')) {
      return refuse('body hash', 'The provided x-amz-content-sha256 header does not match what was computed.');
    }
    const expected = await expectedSignature(signer, request, body, signedHeaders, signingDate);
    if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
      return refuse(
        'signature',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      );
    }
    accepted++;
    return inner(new Request(request.url, { method: request.method, headers: request.headers, body, signal: request.signal }));
  };
  return { gateway, refusals, accepted: () => accepted };
}

/** The signature of exactly the headers the client says it signed, over the body as received. */
async function expectedSignature(
  signer: SignatureV4,
  request: Request,
  body: Uint8Array,
  signedHeaders: string[],
  signingDate: Date,
): Promise<string> {
  const url = new URL(request.url);
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = request.headers.get(name) ?? '';
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) query[name] = url.searchParams.getAll(name);
  const signed = await signer.sign(
    { method: request.method, protocol: url.protocol, hostname: url.hostname, path: url.pathname, query, headers, body },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  return signed.headers.authorization.match(/Signature=([0-9a-f]{64})$/)?.[1] ?? '';
}

/** `20150830T123600Z` → a Date, or undefined when malformed. */
function parseAmzDate(value: string): Date | undefined {
  const m = value.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}
