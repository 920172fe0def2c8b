import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ModelPackageError } from './errors.js';
import { mapWithConcurrency } from './file-hash.js';
import { MANIFEST_FILE, manifestSha256, readManifest, type ModelManifest } from './manifest.js';
import { packModelFolder } from './pack.js';
import { resolvePackagePath } from './package-path.js';
import {
  ModelStoreError,
  assertModelId,
  modelObjectKey,
  modelPackagePrefix,
  readStoredManifest,
  storeUnavailable,
} from './s3-store.js';
import { verifyModelFolder } from './verify.js';

/** Multipart part size: 8 MiB, larger only when a file would need more than S3's 10,000 parts. */
export const UPLOAD_PART_SIZE = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Parts in flight per file and files at once: at most 2 × 4 × 8 MiB buffered. */
const UPLOAD_QUEUE_SIZE = 4;
const UPLOAD_FILE_CONCURRENCY = 2;

export interface PushProgress {
  uploadedBytes: number;
  totalBytes: number;
}

export interface PushOptions {
  s3: S3Client;
  bucket: string;
  /** A model package folder; a folder without manifest.json is packed first with name and version. */
  folder: string;
  name: string;
  version: string;
  onProgress?: (progress: PushProgress) => void;
}

export interface PushResult {
  name: string;
  version: string;
  /** `s3://<bucket>/models/<name>/<version>/` */
  uri: string;
  /** Package files uploaded, manifest included. */
  files: number;
  /** Bytes uploaded, manifest included. */
  bytes: number;
}

/**
 * Uploads a model package to `s3://<bucket>/models/<name>/<version>/`, every file with a
 * multipart Upload and manifest.json last, so a reader never sees a manifest whose files are
 * not all there. Versions are immutable: a different package under an existing version is refused.
 */
export async function pushModelPackage(opts: PushOptions): Promise<PushResult> {
  const { s3, bucket, folder, name, version } = opts;
  assertModelId(name, version);
  const manifest = await localManifest(folder, name, version);
  const manifestBytes = await readFile(path.join(folder, MANIFEST_FILE));
  await refuseDifferentVersion(s3, bucket, manifest);

  const totalBytes = manifest.files.reduce((sum, file) => sum + file.size, 0) + manifestBytes.length;
  const loaded = new Map<string, number>();
  const report = (file: string, bytes: number): void => {
    loaded.set(file, bytes);
    let uploadedBytes = 0;
    for (const value of loaded.values()) uploadedBytes += value;
    opts.onProgress?.({ uploadedBytes, totalBytes });
  };
  opts.onProgress?.({ uploadedBytes: 0, totalBytes });

  // Largest first, so the long upload starts at once and small files fill in beside it.
  const files = [...manifest.files].sort((a, b) => b.size - a.size);
  await mapWithConcurrency(files, UPLOAD_FILE_CONCURRENCY, async (file) => {
    const key = modelObjectKey(name, version, file.path);
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: createReadStream(resolvePackagePath(folder, file.path)) },
      partSize: Math.max(UPLOAD_PART_SIZE, Math.ceil(file.size / MAX_PARTS)),
      queueSize: UPLOAD_QUEUE_SIZE,
    });
    upload.on('httpUploadProgress', (progress) => report(file.path, progress.loaded ?? 0));
    try {
      await upload.done();
    } catch (error) {
      throw storeUnavailable(bucket, key, error);
    }
    report(file.path, file.size);
  });

  const manifestKey = modelObjectKey(name, version, MANIFEST_FILE);
  try {
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: manifestBytes, ContentType: 'application/json' }),
    );
  } catch (error) {
    throw storeUnavailable(bucket, manifestKey, error);
  }
  report(MANIFEST_FILE, manifestBytes.length);
  return {
    name,
    version,
    uri: `s3://${bucket}/${modelPackagePrefix(name, version)}`,
    files: manifest.files.length + 1,
    bytes: totalBytes,
  };
}

/** The folder's manifest, packed now when missing, checked against the requested name and version. */
async function localManifest(folder: string, name: string, version: string): Promise<ModelManifest> {
  let manifest: ModelManifest;
  try {
    manifest = await readManifest(folder);
  } catch (error) {
    if (!(error instanceof ModelPackageError && error.code === 'manifest_missing')) throw error;
    // Packing just hashed every file, so there is nothing left to verify.
    return packModelFolder(folder, { name, version });
  }
  if (manifest.name !== name || manifest.version !== version) {
    throw new ModelStoreError(
      'manifest_mismatch',
      `${path.join(folder, MANIFEST_FILE)} describes ${manifest.name}@${manifest.version}, but the push is for ${name}@${version}; ` +
        `pass --name ${manifest.name} --version ${manifest.version}, or re-pack the folder with \`aigw models pack ${folder} --name ${name} --version ${version}\``,
      { file: MANIFEST_FILE },
    );
  }
  // Never publish files that do not match their manifest: every cold start would reject them.
  await verifyModelFolder(folder, manifest);
  return manifest;
}

async function refuseDifferentVersion(s3: S3Client, bucket: string, manifest: ModelManifest): Promise<void> {
  let stored;
  try {
    stored = await readStoredManifest(s3, bucket, manifest.name, manifest.version);
  } catch (error) {
    // A broken manifest in the store is repaired by pushing over it.
    if (error instanceof ModelStoreError && (error.code === 'manifest_invalid' || error.code === 'manifest_mismatch')) return;
    throw error;
  }
  // The same package again re-uploads its files, which repairs a damaged object.
  if (!stored || manifestSha256(stored.manifest) === manifestSha256(manifest)) return;
  throw new ModelStoreError(
    'version_exists',
    `s3://${bucket}/${modelPackagePrefix(manifest.name, manifest.version)} already holds a different ${manifest.name}@${manifest.version}; ` +
      'versions are immutable (model functions cache them by version), push this package as a new version',
  );
}
