import { GetObjectCommand, S3Client, S3ServiceException, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { mapWithConcurrency } from './file-hash.js';
import { MANIFEST_FILE, parseManifest, type ModelManifest } from './manifest.js';

/**
 * The model store layout in S3: a package lives under `models/<name>/<version>/`, its files at
 * their package-relative paths. manifest.json is written last, so a version is recorded by its
 * manifest alone: listing the manifests lists the complete versions, and no index file can drift.
 */
export const MODEL_STORE_PREFIX = 'models/';

export type ModelStoreErrorCode =
  | 'invalid_name'
  | 'package_missing'
  | 'object_missing'
  | 'manifest_invalid'
  | 'manifest_mismatch'
  | 'version_exists'
  | 'size_mismatch'
  | 'hash_mismatch'
  | 'store_unavailable';

/**
 * The model store could not deliver or accept a package. Nothing half-written is left in
 * place, so a model function maps it to 503 and the next attempt starts clean.
 */
export class ModelStoreError extends Error {
  readonly code: ModelStoreErrorCode;
  /** The package-relative file the error is about, when there is one. */
  readonly file?: string;

  constructor(code: ModelStoreErrorCode, message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModelStoreError';
    this.code = code;
    this.file = options?.file;
  }
}

export interface ModelStoreClientOptions {
  /** Defaults to the SDK's chain (AWS_REGION, profile). */
  region?: string;
  /** An S3-compatible endpoint (s3rver, MinIO); turns on path-style addressing. */
  endpoint?: string;
}

/** An S3 client for the model store; credentials come from the SDK's default chain. */
export function createModelStoreClient(opts: ModelStoreClientOptions = {}): S3Client {
  return new S3Client({
    ...(opts.region === undefined ? {} : { region: opts.region }),
    ...(opts.endpoint === undefined
      ? {}
      : {
          endpoint: opts.endpoint,
          forcePathStyle: true,
          // Many S3-compatible servers store aws-chunked checksum trailers as object bytes.
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }),
  });
}

// One path segment each: names and versions become S3 key parts and /tmp folder names.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Throws unless name and version are safe single path segments (e.g. `llama-3.2-1b`, `2`). */
export function assertModelId(name: string, version: string): void {
  for (const [label, value] of [
    ['name', name],
    ['version', version],
  ] as const) {
    if (!SEGMENT.test(value) || value.includes('..')) {
      throw new ModelStoreError(
        'invalid_name',
        `model ${label} "${value}" must start with a letter or digit and use only letters, digits, ".", "_" and "-"`,
      );
    }
  }
}

/** `models/<name>/<version>/` */
export function modelPackagePrefix(name: string, version: string): string {
  return `${MODEL_STORE_PREFIX}${name}/${version}/`;
}

/** The object key of one package file. */
export function modelObjectKey(name: string, version: string, file: string): string {
  return `${modelPackagePrefix(name, version)}${file}`;
}

/** The manifest of a stored version with its raw bytes, or undefined when the version is not in the store. */
export async function readStoredManifest(
  s3: S3Client,
  bucket: string,
  name: string,
  version: string,
): Promise<{ manifest: ModelManifest; bytes: Uint8Array; lastModified?: Date } | undefined> {
  const key = modelObjectKey(name, version, MANIFEST_FILE);
  let bytes: Uint8Array;
  let lastModified: Date | undefined;
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    bytes = await response.Body!.transformToByteArray();
    lastModified = response.LastModified;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw storeUnavailable(bucket, key, error);
  }
  const source = `s3://${bucket}/${key}`;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new ModelStoreError('manifest_invalid', `${source} is not valid JSON; push the package again`, {
      file: MANIFEST_FILE,
      cause: error,
    });
  }
  let manifest: ModelManifest;
  try {
    manifest = parseManifest(value, source);
  } catch (error) {
    throw new ModelStoreError('manifest_invalid', `${(error as Error).message}; push the package again`, {
      file: MANIFEST_FILE,
      cause: error,
    });
  }
  if (manifest.name !== name || manifest.version !== version) {
    throw new ModelStoreError(
      'manifest_mismatch',
      `${source} describes ${manifest.name}@${manifest.version}, not ${name}@${version}; push the package again`,
      { file: MANIFEST_FILE },
    );
  }
  return { manifest, bytes, ...(lastModified === undefined ? {} : { lastModified }) };
}

export interface StoredModelVersion {
  name: string;
  version: string;
  /** Sum of the manifest's file sizes: what a cold start downloads. */
  bytes: number;
  /** When the manifest, the last object of a push, was written. */
  uploadedAt: Date;
}

// Manifests are small; a few at a time keeps `list` quick without a burst of requests.
const LIST_CONCURRENCY = 8;

/** Every complete version in the store (those with a manifest), sorted by name then upload time. */
export async function listModelVersions(opts: { s3: S3Client; bucket: string }): Promise<StoredModelVersion[]> {
  const { s3, bucket } = opts;
  const found: { name: string; version: string }[] = [];
  try {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: MODEL_STORE_PREFIX })) {
      for (const object of page.Contents ?? []) {
        const parts = (object.Key ?? '').slice(MODEL_STORE_PREFIX.length).split('/');
        if (parts.length === 3 && parts[2] === MANIFEST_FILE) found.push({ name: parts[0], version: parts[1] });
      }
    }
  } catch (error) {
    throw storeUnavailable(bucket, MODEL_STORE_PREFIX, error);
  }
  const versions = await mapWithConcurrency(found, LIST_CONCURRENCY, async ({ name, version }) => {
    const stored = await readStoredManifest(s3, bucket, name, version);
    if (!stored) return undefined; // deleted between list and read
    const bytes = stored.manifest.files.reduce((sum, file) => sum + file.size, 0);
    return { name, version, bytes, uploadedAt: stored.lastModified ?? new Date(0) };
  });
  return versions
    .filter((version): version is StoredModelVersion => version !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name) || a.uploadedAt.getTime() - b.uploadedAt.getTime());
}

/** True for S3's "no such key" answers (GET says NoSuchKey, HEAD says NotFound). */
export function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  if (error.name === 'NoSuchBucket') return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404;
}

/** Wraps an SDK or network failure with the bucket and key it was about. */
export function storeUnavailable(bucket: string, key: string, error: unknown): ModelStoreError {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new ModelStoreError('store_unavailable', `model store request for s3://${bucket}/${key} failed (${reason})`, {
    cause: error,
  });
}
