import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { RequestSigner, SignableRequest } from './upstream-backend.js';

/** Static credentials or a provider of them, exactly what SignatureV4 takes. */
export type SigningCredentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

export interface SigV4SignerOptions {
  /** The signing region; without it, taken from a Lambda function URL's host (`*.lambda-url.<region>.on.aws`). */
  region?: string;
  /** The signing name of the service: `lambda` for function URLs. */
  service: string;
  /** Defaults to the Node provider chain (env, SSO, shared files, container and instance roles). */
  credentials?: SigningCredentials;
}

/** A signer that can't sign: no region given and none in the URL. */
export class SignerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignerConfigError';
  }
}

const LAMBDA_URL_HOST = /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/;

/** The headers SigV4 adds; everything else the caller already sends. */
const SIGNATURE_HEADERS = ['authorization', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token'];

/**
 * SigV4 for AWS_IAM function URLs. The body is hashed into `x-amz-content-sha256` and signed,
 * so a changed body is refused too; the host is signed from the URL, as fetch will send it.
 */
export function sigv4Signer(options: SigV4SignerOptions): RequestSigner {
  const credentials = options.credentials ?? fromNodeProviderChain();
  const signers = new Map<string, SignatureV4>();
  const signerFor = (region: string) => {
    let signer = signers.get(region);
    if (!signer) {
      signer = new SignatureV4({ service: options.service, region, credentials, sha256: Hash.bind(null, 'sha256') });
      signers.set(region, signer);
    }
    return signer;
  };

  return async (request: SignableRequest) => {
    const url = new URL(request.url);
    const region = options.region ?? url.hostname.match(LAMBDA_URL_HOST)?.[1];
    if (!region) throw new SignerConfigError(`no signing region: give one, or use a Lambda function URL (got host ${url.hostname})`);
    const signed = await signerFor(region).sign({
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      query: queryOf(url),
      headers: { ...lowerCased(request.headers), host: url.host },
      body: request.body,
    });
    const added: Record<string, string> = {};
    for (const name of SIGNATURE_HEADERS) {
      const value = signed.headers[name];
      if (value !== undefined) added[name] = value;
    }
    return added;
  };
}

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    query[name] = values.length === 1 ? values[0] : values;
  }
  return query;
}
