// The S3 model store against a real S3 server (s3rver): push, list, fetch with ranged GETs,
// the second cold start that finds the package in place, and damaged or missing objects.
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MANIFEST_FILE,
  ModelStoreError,
  VERIFIED_STAMP_FILE,
  fetchModelPackage,
  listModelVersions,
  modelObjectKey,
  pushModelPackage,
  readManifest,
  writeManifest,
  type ModelManifest,
  type PushProgress,
} from '../../src/models/index.js';
import { ensureTestModel } from '../helpers/test-models.js';
import { startS3rver, type S3rverHandle, type S3rverRequest } from '../setup/s3rver.js';

const PART = 64 * 1024;

let server: S3rverHandle;
let s3: S3Client;
let bucket: string;
let packageDir: string;
let manifest: ModelManifest;
let scratch: string;
let copies = 0;

beforeAll(async () => {
  server = await startS3rver();
  s3 = server.client();
  bucket = server.bucket;
  packageDir = await ensureTestModel({ layout: 'optimum', precision: 'int4' });
  manifest = await readManifest(packageDir);
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-model-store-'));
});

afterAll(async () => {
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A copy of the test package under its own name, pushed, so a test may damage its objects freely. */
async function pushedCopy(): Promise<{ name: string; version: string; dir: string }> {
  const name = `copy-${++copies}`;
  const dir = path.join(scratch, 'packages', name);
  await cp(packageDir, dir, { recursive: true });
  await writeManifest(dir, { ...manifest, name });
  await pushModelPackage({ s3, bucket, folder: dir, name, version: '1' });
  return { name, version: '1', dir };
}

async function emptyCacheDir(): Promise<string> {
  return mkdtemp(path.join(scratch, 'cache-'));
}

/** Requests served after `mark` (an index into the server's log). */
function requestsSince(mark: number): S3rverRequest[] {
  return server.requests.slice(mark);
}

function gets(requests: S3rverRequest[], key?: string): S3rverRequest[] {
  return requests.filter((r) => r.method === 'GET' && (key === undefined || r.key === key));
}

/** Every file of the package, manifest included, is byte-identical in both folders. */
async function expectSameFiles(expectedDir: string, actualDir: string, files: string[]): Promise<void> {
  for (const file of files) {
    const [expected, actual] = await Promise.all([readFile(path.join(expectedDir, file)), readFile(path.join(actualDir, file))]);
    expect(actual.equals(expected), `${file} differs`).toBe(true);
  }
}

async function expectFetchError(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<ModelStoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelStoreError);
  expect((error as ModelStoreError).code).toBe(code);
  expect((error as Error).message).toMatch(pattern);
  return error as ModelStoreError;
}

describe('push and list', () => {
  it('uploads every file with the manifest last and lists the version with its size', async () => {
    const mark = server.requests.length;
    const progress: PushProgress[] = [];
    const result = await pushModelPackage({
      s3,
      bucket,
      folder: packageDir,
      name: manifest.name,
      version: manifest.version,
      onProgress: (p) => progress.push(p),
    });
    const manifestBytes = (await readFile(path.join(packageDir, MANIFEST_FILE))).length;
    const packageBytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
    expect(result).toEqual({
      name: manifest.name,
      version: manifest.version,
      uri: `s3://${bucket}/models/${manifest.name}/${manifest.version}/`,
      files: manifest.files.length + 1,
      bytes: packageBytes + manifestBytes,
    });

    const writes = requestsSince(mark).filter((r) => r.method === 'PUT' || r.method === 'POST');
    const written = new Set(writes.map((r) => r.key));
    for (const file of manifest.files) expect(written).toContain(modelObjectKey(manifest.name, manifest.version, file.path));
    expect(writes.at(-1)?.key).toBe(modelObjectKey(manifest.name, manifest.version, MANIFEST_FILE));
    expect(writes.filter((r) => r.key.endsWith(MANIFEST_FILE))).toHaveLength(1);

    expect(progress.at(-1)).toEqual({ uploadedBytes: result.bytes, totalBytes: result.bytes });
    for (let i = 1; i < progress.length; i++) expect(progress[i].uploadedBytes).toBeGreaterThanOrEqual(progress[i - 1].uploadedBytes);

    const versions = await listModelVersions({ s3, bucket });
    const listed = versions.find((v) => v.name === manifest.name && v.version === manifest.version);
    expect(listed?.bytes).toBe(packageBytes);
    expect(listed?.uploadedAt).toBeInstanceOf(Date);
    expect(Math.abs(listed!.uploadedAt.getTime() - Date.now())).toBeLessThan(24 * 3600 * 1000);
  });

  it('uploads a file larger than one part as a multipart upload', async () => {
    const fp32Dir = await ensureTestModel({ layout: 'optimum', precision: 'fp32' });
    const fp32 = await readManifest(fp32Dir);
    const big = [...fp32.files].sort((a, b) => b.size - a.size)[0];
    expect(big.size).toBeGreaterThan(8 * 1024 * 1024);
    const mark = server.requests.length;
    await pushModelPackage({ s3, bucket, folder: fp32Dir, name: fp32.name, version: fp32.version });
    const key = modelObjectKey(fp32.name, fp32.version, big.path);
    const forKey = requestsSince(mark).filter((r) => r.key === key);
    // CreateMultipartUpload, one PUT per 8 MiB part, CompleteMultipartUpload.
    expect(forKey.map((r) => r.method)).toEqual(['POST', ...Array(Math.ceil(big.size / (8 * 1024 * 1024))).fill('PUT'), 'POST']);

    const cacheDir = await emptyCacheDir();
    const dir = await fetchModelPackage({ s3, bucket, name: fp32.name, version: fp32.version, cacheDir });
    await expectSameFiles(fp32Dir, dir, [...fp32.files.map((f) => f.path), MANIFEST_FILE]);
  });

  it('packs a folder without a manifest using the given name and version', async () => {
    const dir = path.join(scratch, 'unpacked');
    await cp(packageDir, dir, { recursive: true });
    await rm(path.join(dir, MANIFEST_FILE));
    await rm(path.join(dir, VERIFIED_STAMP_FILE), { force: true });
    await pushModelPackage({ s3, bucket, folder: dir, name: 'packed-on-push', version: '3' });
    expect((await readManifest(dir)).name).toBe('packed-on-push');
    const versions = await listModelVersions({ s3, bucket });
    expect(versions.some((v) => v.name === 'packed-on-push' && v.version === '3')).toBe(true);
  });

  it('refuses a name or version different from the manifest, uploading nothing', async () => {
    const mark = server.requests.length;
    await expectFetchError(
      pushModelPackage({ s3, bucket, folder: packageDir, name: 'other-name', version: manifest.version }),
      'manifest_mismatch',
      /describes test-tiny-optimum-int4@1, but the push is for other-name@1/,
    );
    await expectFetchError(
      pushModelPackage({ s3, bucket, folder: packageDir, name: manifest.name, version: '2' }),
      'manifest_mismatch',
      /--version 1/,
    );
    expect(requestsSince(mark)).toEqual([]);
  });

  it('refuses a different package under a version that exists', async () => {
    const { name, dir } = await pushedCopy();
    const changed = path.join(scratch, 'changed');
    await cp(dir, changed, { recursive: true });
    const current = await readManifest(changed);
    await writeManifest(changed, { ...current, contextLength: current.contextLength - 1 });
    await expectFetchError(
      pushModelPackage({ s3, bucket, folder: changed, name, version: '1' }),
      'version_exists',
      /already holds a different copy-\d+@1; versions are immutable/,
    );
  });

  it('rejects names that are not one path segment', async () => {
    await expectFetchError(
      pushModelPackage({ s3, bucket, folder: packageDir, name: '../etc', version: '1' }),
      'invalid_name',
      /model name "..\/etc"/,
    );
  });
});

describe('fetch', () => {
  it('downloads into an empty cache with parallel ranged GETs, byte-identical', async () => {
    const { name, version, dir: source } = await pushedCopy();
    const cacheDir = await emptyCacheDir();
    const mark = server.requests.length;
    const dir = await fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART, concurrency: 4 });
    expect(dir).toBe(path.join(cacheDir, name, version));
    await expectSameFiles(source, dir, [...manifest.files.map((f) => f.path), MANIFEST_FILE]);

    const big = [...manifest.files].sort((a, b) => b.size - a.size)[0];
    const parts = gets(requestsSince(mark), modelObjectKey(name, version, big.path));
    expect(parts.length).toBe(Math.ceil(big.size / PART));
    expect(parts.length).toBeGreaterThan(1);
    const ranges = parts.map((r) => r.range!.match(/^bytes=(\d+)-(\d+)$/)!.slice(1).map(Number)).sort((a, b) => a[0] - b[0]);
    expect(ranges[0][0]).toBe(0);
    expect(ranges.at(-1)![1]).toBe(big.size - 1);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBe(ranges[i - 1][1] + 1);
    // Only the package folder is left beside nothing: no temp folders.
    expect(await readdir(path.join(cacheDir, name))).toEqual([version]);
  });

  it('a second cold start finds the package in place and downloads nothing but the manifest', async () => {
    const { name, version } = await pushedCopy();
    const cacheDir = await emptyCacheDir();
    const first = await fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART });
    const mark = server.requests.length;
    const second = await fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART });
    expect(second).toBe(first);
    expect(requestsSince(mark)).toEqual([{ method: 'GET', bucket, key: modelObjectKey(name, version, MANIFEST_FILE) }]);
  });

  it('replaces a local copy that was damaged after download', async () => {
    const { name, version, dir: source } = await pushedCopy();
    const cacheDir = await emptyCacheDir();
    const dir = await fetchModelPackage({ s3, bucket, name, version, cacheDir });
    const tokenizer = path.join(dir, 'tokenizer.json');
    const bytes = await readFile(tokenizer);
    bytes[10] ^= 0xff;
    await writeFile(tokenizer, bytes);
    const mark = server.requests.length;
    expect(await fetchModelPackage({ s3, bucket, name, version, cacheDir })).toBe(dir);
    expect(gets(requestsSince(mark)).length).toBeGreaterThan(1);
    await expectSameFiles(source, dir, ['tokenizer.json']);
  });

  it('single-stream mode makes one plain GET per file', async () => {
    const { name, version, dir: source } = await pushedCopy();
    const cacheDir = await emptyCacheDir();
    const mark = server.requests.length;
    const dir = await fetchModelPackage({ s3, bucket, name, version, cacheDir, singleStream: true });
    await expectSameFiles(source, dir, manifest.files.map((f) => f.path));
    const fileGets = gets(requestsSince(mark)).filter((r) => !r.key.endsWith(MANIFEST_FILE));
    expect(fileGets.map((r) => r.key).sort()).toEqual(manifest.files.map((f) => modelObjectKey(name, version, f.path)).sort());
    expect(fileGets.every((r) => r.range === undefined)).toBe(true);
  });

  it('concurrent fetches of the same version share one download', async () => {
    const { name, version } = await pushedCopy();
    const cacheDir = await emptyCacheDir();
    const mark = server.requests.length;
    const dirs = await Promise.all([1, 2, 3].map(() => fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART })));
    expect(new Set(dirs).size).toBe(1);
    const served = gets(requestsSince(mark));
    expect(gets(served, modelObjectKey(name, version, MANIFEST_FILE))).toHaveLength(1);
    const expectedParts = manifest.files.reduce((sum, f) => sum + Math.max(1, Math.ceil(f.size / PART)), 0);
    expect(served).toHaveLength(1 + expectedParts);
  });

  it('removes temp folders left by a download whose process died', async () => {
    const { name, version } = await pushedCopy();
    const cacheDir = await emptyCacheDir();
    const abandoned = path.join(cacheDir, name, `${version}.download-999999999-abc123`);
    // Left by an earlier runtime that had this process's pid (Lambda reuses /tmp and often the pid).
    const samePid = path.join(cacheDir, name, `${version}.download-${process.pid}-old123`);
    for (const folder of [abandoned, samePid]) {
      await mkdir(path.join(folder, 'onnx'), { recursive: true });
      await writeFile(path.join(folder, 'onnx', 'partial'), 'half');
    }
    await fetchModelPackage({ s3, bucket, name, version, cacheDir });
    expect(await readdir(path.join(cacheDir, name))).toEqual([version]);
  });
});

describe('fetch of a damaged or missing package', () => {
  /** A failed fetch leaves neither the package folder nor a temp folder. */
  async function expectNothingInPlace(cacheDir: string, name: string): Promise<void> {
    expect(await readdir(path.join(cacheDir, name))).toEqual([]);
  }

  it('an object with different bytes of the same size fails the hash check', async () => {
    const { name, version, dir: source } = await pushedCopy();
    const big = [...manifest.files].sort((a, b) => b.size - a.size)[0];
    const bytes = await readFile(path.join(source, big.path));
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: modelObjectKey(name, version, big.path), Body: bytes }));
    const cacheDir = await emptyCacheDir();
    const error = await expectFetchError(
      fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART }),
      'hash_mismatch',
      new RegExp(`s3://${bucket}/models/${name}/1/${big.path} does not match .*SHA-256.*push the package again`),
    );
    expect(error.file).toBe(big.path);
    await expectNothingInPlace(cacheDir, name);

    // The next attempt starts clean: once the object is repaired, the same cache works.
    await pushModelPackage({ s3, bucket, folder: source, name, version });
    const dir = await fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART });
    await expectSameFiles(source, dir, [big.path]);
  });

  it('a truncated object fails the size check', async () => {
    const { name, version, dir: source } = await pushedCopy();
    const big = [...manifest.files].sort((a, b) => b.size - a.size)[0];
    const bytes = await readFile(path.join(source, big.path));
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: modelObjectKey(name, version, big.path), Body: bytes.subarray(0, bytes.length - 1000) }),
    );
    const cacheDir = await emptyCacheDir();
    await expectFetchError(
      fetchModelPackage({ s3, bucket, name, version, cacheDir, partSize: PART }),
      'size_mismatch',
      new RegExp(`is ${big.size - 1000} bytes, the manifest says ${big.size} for ${big.path}; the object is truncated`),
    );
    await expectNothingInPlace(cacheDir, name);
  });

  it('a truncated object fails the size check in single-stream mode too', async () => {
    const { name, version, dir: source } = await pushedCopy();
    const file = manifest.files.find((f) => f.path === 'tokenizer.json')!;
    const bytes = await readFile(path.join(source, file.path));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: modelObjectKey(name, version, file.path), Body: bytes.subarray(0, 100) }));
    const cacheDir = await emptyCacheDir();
    await expectFetchError(
      fetchModelPackage({ s3, bucket, name, version, cacheDir, singleStream: true }),
      'size_mismatch',
      /is 100 bytes, the manifest says \d+ for tokenizer.json/,
    );
    await expectNothingInPlace(cacheDir, name);
  });

  it('a missing object gives a clear error', async () => {
    const { name, version } = await pushedCopy();
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: modelObjectKey(name, version, 'tokenizer.json') }));
    const cacheDir = await emptyCacheDir();
    const error = await expectFetchError(
      fetchModelPackage({ s3, bucket, name, version, cacheDir }),
      'object_missing',
      new RegExp(`s3://${bucket}/models/${name}/1/tokenizer.json is missing: the package's manifest lists tokenizer.json`),
    );
    expect(error.file).toBe('tokenizer.json');
    await expectNothingInPlace(cacheDir, name);
  });

  it('a version that was never pushed gives a clear error', async () => {
    const cacheDir = await emptyCacheDir();
    await expectFetchError(
      fetchModelPackage({ s3, bucket, name: 'never-pushed', version: '9', cacheDir }),
      'package_missing',
      /no model package never-pushed@9 in the store: .*; push it with `aigw models push <folder> --name never-pushed --version 9`/,
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('an unreachable store gives a store_unavailable error', async () => {
    const other = await startS3rver();
    const client = other.client();
    await other.stop();
    const cacheDir = await emptyCacheDir();
    await expectFetchError(
      fetchModelPackage({ s3: client, bucket, name: manifest.name, version: '1', cacheDir }),
      'store_unavailable',
      /model store request for s3:\/\/.*manifest.json failed/,
    );
  });
});
