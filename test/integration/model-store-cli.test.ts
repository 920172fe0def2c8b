// `aigw models push|list` against a real S3 server (s3rver), credentials and bucket from the
// environment as an operator would set them.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CliUsageError, MODEL_BUCKET_ENV, modelsCommand } from '../../src/cli/models-command.js';
import { fetchModelPackage, readManifest, type ModelManifest } from '../../src/models/index.js';
import { ensureTestModel } from '../helpers/test-models.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from '../setup/s3rver.js';

let server: S3rverHandle;
let packageDir: string;
let manifest: ModelManifest;
let cacheDir: string;
let printed: string[];

beforeAll(async () => {
  server = await startS3rver();
  packageDir = await ensureTestModel({ layout: 'optimum', precision: 'int4' });
  manifest = await readManifest(packageDir);
  cacheDir = await mkdtemp(path.join(tmpdir(), 'aigw-models-cli-'));
});

afterAll(async () => {
  await server?.stop();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

beforeEach(() => {
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_CREDENTIALS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', S3RVER_CREDENTIALS.secretAccessKey);
  vi.stubEnv('AWS_REGION', 'us-east-1');
  printed = [];
  vi.spyOn(console, 'log').mockImplementation((line: unknown) => void printed.push(String(line)));
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

async function run(...args: string[]): Promise<void> {
  await modelsCommand().parseAsync(args, { from: 'user' });
}

describe('aigw models', () => {
  it('push uploads a package that a model function can then fetch, and list shows it', async () => {
    await run('push', packageDir, '--name', manifest.name, '--version', manifest.version, '--bucket', server.bucket, '--endpoint', server.endpoint);
    expect(printed.at(-1)).toMatch(
      new RegExp(`^pushed ${manifest.name}@1 to s3://${server.bucket}/models/${manifest.name}/1/: ${manifest.files.length + 1} files, \\d+\\.\\d MB$`),
    );

    const dir = await fetchModelPackage({ s3: server.client(), bucket: server.bucket, name: manifest.name, version: '1', cacheDir });
    expect((await readFile(path.join(dir, manifest.onnxFile))).equals(await readFile(path.join(packageDir, manifest.onnxFile)))).toBe(true);

    printed = [];
    vi.stubEnv(MODEL_BUCKET_ENV, server.bucket);
    await run('list', '--endpoint', server.endpoint);
    expect(printed[0]).toMatch(/^NAME\s+VERSION\s+SIZE\s+UPLOADED$/);
    const megabytes = (manifest.files.reduce((sum, f) => sum + f.size, 0) / 1e6).toFixed(1);
    expect(printed.slice(1)).toHaveLength(1);
    expect(printed[1]).toMatch(new RegExp(`^${manifest.name}\\s+1\\s+${megabytes} MB\\s+\\d{4}-\\d\\d-\\d\\dT`));
  });

  it('list says so when the store is empty', async () => {
    const empty = await startS3rver('empty-bucket');
    try {
      await run('list', '--bucket', 'empty-bucket', '--endpoint', empty.endpoint);
      expect(printed).toEqual([
        'no model packages in s3://empty-bucket/models/; push one with `aigw models push <folder> --name <n> --version <v>`',
      ]);
    } finally {
      await empty.stop();
    }
  });

  it('refuses to run without a bucket', async () => {
    vi.stubEnv(MODEL_BUCKET_ENV, '');
    await expect(run('list', '--endpoint', server.endpoint)).rejects.toThrow(CliUsageError);
    await expect(run('list', '--endpoint', server.endpoint)).rejects.toThrow(`no model bucket: pass --bucket or set ${MODEL_BUCKET_ENV}`);
  });
});
