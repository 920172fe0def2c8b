import { mkdir, mkdtemp, open, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { ModelPackageError } from './errors.js';
import { MANIFEST_FILE, manifestSha256, readManifest, type ManifestFile, type ModelManifest } from './manifest.js';
import { resolvePackagePath } from './package-path.js';
import {
  ModelStoreError,
  assertModelId,
  isNotFound,
  modelObjectKey,
  modelPackagePrefix,
  readStoredManifest,
  storeUnavailable,
} from './s3-store.js';
import { VERIFIED_STAMP_FILE, verifyModelFolder } from './verify.js';

/** Where a model function keeps packages: /tmp on Lambda, reused across warm invocations. */
export const DEFAULT_MODEL_CACHE_DIR = path.join(tmpdir(), 'aigw-models');
/** 8 MiB ranged parts: big enough that request overhead is small, small enough to spread across connections. */
export const DOWNLOAD_PART_SIZE = 8 * 1024 * 1024;
/** Ranged GETs in flight across all files of a package. */
export const DOWNLOAD_CONCURRENCY = 8;

export interface FetchOptions {
  s3: S3Client;
  bucket: string;
  name: string;
  version: string;
  /** The package lands in `<cacheDir>/<name>/<version>/`, e.g. DEFAULT_MODEL_CACHE_DIR. */
  cacheDir: string;
  /** Bytes per ranged GET; default DOWNLOAD_PART_SIZE. */
  partSize?: number;
  /** GETs in flight across all files; default DOWNLOAD_CONCURRENCY. */
  concurrency?: number;
  /** One plain GET per file instead of ranged parts (files still `concurrency` at a time); for comparison. */
  singleStream?: boolean;
}

interface DownloadJob {
  file: ManifestFile;
  handle: FileHandle;
  /** Inclusive byte range of the file; absent means the whole object in one plain GET. */
  range?: { start: number; end: number };
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Makes a stored model package available locally and returns its folder. A complete, verified
 * copy already in the cache is returned at once; otherwise every file is downloaded with
 * parallel ranged GETs into a temp folder beside the target, verified against the manifest
 * (sizes and SHA-256), and renamed into place, so a half-written package is never loaded.
 * Concurrent calls for the same package in one process share one download. Failures throw
 * ModelStoreError and leave nothing behind, so the next attempt starts clean.
 */
export function fetchModelPackage(opts: FetchOptions): Promise<string> {
  const key = [path.resolve(opts.cacheDir), opts.bucket, opts.name, opts.version].join('\0');
  let pending = inFlight.get(key);
  if (!pending) {
    pending = fetchOnce(opts).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

async function fetchOnce(opts: FetchOptions): Promise<string> {
  const { s3, bucket, name, version } = opts;
  assertModelId(name, version);
  const partSize = positiveInteger('partSize', opts.partSize ?? DOWNLOAD_PART_SIZE);
  const concurrency = positiveInteger('concurrency', opts.concurrency ?? DOWNLOAD_CONCURRENCY);

  const stored = await readStoredManifest(s3, bucket, name, version);
  if (!stored) {
    throw new ModelStoreError(
      'package_missing',
      `no model package ${name}@${version} in the store: s3://${bucket}/${modelObjectKey(name, version, MANIFEST_FILE)} does not exist; push it with \`aigw models push <folder> --name ${name} --version ${version}\``,
    );
  }
  const { manifest } = stored;
  rejectReservedPaths(bucket, manifest);

  const target = path.join(path.resolve(opts.cacheDir), name, version);
  if (await isCompletePackage(target, manifest)) return target;

  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true });
  await removeAbandonedDownloads(parent, version);
  const temporary = await mkdtemp(path.join(parent, `${version}${TEMP_MARK}${process.pid}-`));
  downloadsInProgress.add(temporary);
  try {
    await downloadFiles(s3, bucket, manifest, temporary, { partSize, concurrency, singleStream: opts.singleStream ?? false });
    await writeFile(path.join(temporary, MANIFEST_FILE), stored.bytes);
    await verifyDownload(bucket, temporary, manifest);
    await moveIntoPlace(temporary, target, manifest);
    return target;
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    downloadsInProgress.delete(temporary);
  }
}

async function downloadFiles(
  s3: S3Client,
  bucket: string,
  manifest: ModelManifest,
  dir: string,
  opts: { partSize: number; concurrency: number; singleStream: boolean },
): Promise<void> {
  const handles: FileHandle[] = [];
  try {
    const jobs: DownloadJob[] = [];
    for (const file of manifest.files) {
      const local = resolvePackagePath(dir, file.path);
      await mkdir(path.dirname(local), { recursive: true });
      const handle = await open(local, 'w');
      handles.push(handle);
      // An empty object has no byte range to ask for; one plain GET still proves it exists.
      if (opts.singleStream || file.size === 0) {
        jobs.push({ file, handle });
        continue;
      }
      for (let start = 0; start < file.size; start += opts.partSize) {
        jobs.push({ file, handle, range: { start, end: Math.min(start + opts.partSize, file.size) - 1 } });
      }
    }
    await runBounded(jobs, opts.concurrency, (job, signal) =>
      downloadPart(s3, bucket, modelObjectKey(manifest.name, manifest.version, job.file.path), job, signal),
    );
  } finally {
    await Promise.all(handles.map((handle) => handle.close()));
  }
}

/** Runs every job with at most `limit` in flight; the first failure aborts the rest and is thrown once all have stopped. */
async function runBounded<T>(jobs: readonly T[], limit: number, fn: (job: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < jobs.length) {
      const job = jobs[next++];
      try {
        await fn(job, controller.signal);
      } catch (error) {
        if (!failure) {
          failure = { error };
          controller.abort();
        }
      }
    }
  };
  // Workers never reject, so every write has finished before the caller removes the temp folder.
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  if (failure) throw failure.error;
}

async function downloadPart(s3: S3Client, bucket: string, key: string, job: DownloadJob, signal: AbortSignal): Promise<void> {
  const { file, range } = job;
  const location = `s3://${bucket}/${key}`;
  let response;
  try {
    response = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      { abortSignal: signal },
    );
  } catch (error) {
    if (isNotFound(error)) {
      throw new ModelStoreError(
        'object_missing',
        `${location} is missing: the package's manifest lists ${file.path}, but the store has no such object; push the package again`,
        { file: file.path, cause: error },
      );
    }
    // S3 answers 416 when the range starts past the end: the object is shorter than the manifest says.
    if (error instanceof S3ServiceException && error.name === 'InvalidRange') {
      throw sizeMismatch(location, file, undefined, error);
    }
    throw storeUnavailable(bucket, key, error);
  }
  const objectSize = range ? contentRangeTotal(response.ContentRange) : response.ContentLength;
  if (objectSize === undefined) {
    (response.Body as Readable | undefined)?.destroy();
    throw new ModelStoreError('store_unavailable', `${location} answered without ${range ? 'Content-Range' : 'Content-Length'}; the store does not support ranged GETs`, {
      file: file.path,
    });
  }
  if (objectSize !== file.size) {
    (response.Body as Readable | undefined)?.destroy();
    throw sizeMismatch(location, file, objectSize);
  }

  const start = range?.start ?? 0;
  const end = range ? range.end + 1 : file.size;
  let position = start;
  try {
    for await (const chunk of response.Body as Readable) {
      signal.throwIfAborted();
      const bytes = chunk as Buffer;
      if (position + bytes.length > end) throw sizeMismatch(location, file, undefined);
      await job.handle.write(bytes, 0, bytes.length, position);
      position += bytes.length;
    }
  } catch (error) {
    if (error instanceof ModelStoreError) throw error;
    throw storeUnavailable(bucket, key, error);
  }
  if (position !== end) {
    throw new ModelStoreError(
      'store_unavailable',
      `${location}: the response ended after ${position - start} of ${end - start} bytes; try again`,
      { file: file.path },
    );
  }
}

function sizeMismatch(location: string, file: ManifestFile, actual: number | undefined, cause?: unknown): ModelStoreError {
  const size = actual === undefined ? 'a different size' : `${actual} bytes`;
  return new ModelStoreError(
    'size_mismatch',
    `${location} is ${size}, the manifest says ${file.size} for ${file.path}; the object is truncated or was overwritten, push the package again`,
    { file: file.path, ...(cause === undefined ? {} : { cause }) },
  );
}

/** The object size from `bytes a-b/size`; undefined when absent or `*`. */
function contentRangeTotal(header: string | undefined): number | undefined {
  const match = /\/(\d+)\s*$/.exec(header ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Hash check of the downloaded copy, reported against the S3 objects it came from. */
async function verifyDownload(bucket: string, dir: string, manifest: ModelManifest): Promise<void> {
  try {
    await verifyModelFolder(dir, manifest, { force: true });
  } catch (error) {
    if (!(error instanceof ModelPackageError)) throw error;
    const file = error.file ?? '';
    const location = `s3://${bucket}/${modelObjectKey(manifest.name, manifest.version, file)}`;
    const code = error.code === 'hash_mismatch' ? 'hash_mismatch' : error.code === 'size_mismatch' ? 'size_mismatch' : 'object_missing';
    throw new ModelStoreError(
      code,
      `${location} does not match the package's manifest (${error.message.replace(`${dir}`, 'the download')}); the object is corrupt or was overwritten, push the package again`,
      { file, cause: error },
    );
  }
}

/** True when `dir` holds this exact package, verified (the stamp makes that cheap after the first time). */
async function isCompletePackage(dir: string, manifest: ModelManifest): Promise<boolean> {
  try {
    const local = await readManifest(dir);
    if (manifestSha256(local) !== manifestSha256(manifest)) return false;
    await verifyModelFolder(dir, manifest);
    return true;
  } catch (error) {
    // Missing, stale or damaged: download it again.
    if (error instanceof ModelPackageError) return false;
    throw error;
  }
}

async function moveIntoPlace(temporary: string, target: string, manifest: ModelManifest): Promise<void> {
  try {
    await rename(temporary, target);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
  // Another process finished first, or a stale copy is in the way.
  if (await isCompletePackage(target, manifest)) {
    await rm(temporary, { recursive: true, force: true });
    return;
  }
  await rm(target, { recursive: true, force: true });
  await rename(temporary, target);
}

const TEMP_MARK = '.download-';

/** Temp folders this process is downloading into right now. */
const downloadsInProgress = new Set<string>();

/**
 * Removes temp folders of downloads whose process died mid-way (the rename never happened).
 * A folder with this process's pid but not in progress here was left by an earlier process
 * that had the same pid: Lambda restarts its runtime with the same /tmp and often the same pid.
 */
async function removeAbandonedDownloads(parent: string, version: string): Promise<void> {
  const prefix = `${version}${TEMP_MARK}`;
  for (const entry of await readdir(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const folder = path.join(parent, entry);
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (downloadsInProgress.has(folder) || (pid !== process.pid && isProcessAlive(pid))) continue;
    await rm(folder, { recursive: true, force: true });
  }
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A manifest from the store must not name the files the download writes itself. */
function rejectReservedPaths(bucket: string, manifest: ModelManifest): void {
  const reserved = manifest.files.find((file) => file.path === MANIFEST_FILE || file.path === VERIFIED_STAMP_FILE);
  if (reserved) {
    throw new ModelStoreError(
      'manifest_invalid',
      `s3://${bucket}/${modelPackagePrefix(manifest.name, manifest.version)}${MANIFEST_FILE} lists ${reserved.path} as a package file; re-pack and push the package`,
      { file: MANIFEST_FILE },
    );
  }
}

function positiveInteger(label: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${label} must be a positive integer, got ${value}`);
  return value;
}
