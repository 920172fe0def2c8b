import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DynamoDbLocalStartError,
  JavaUnavailableError,
  checkJava,
  createDynamoDbClient,
  ensureTable,
  itemKeys,
  parseJavaVersion,
  startDynamoDbLocal,
  tableSchema,
} from '../../src/store/index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aigw-ddb-local-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function answers(endpoint: string): Promise<boolean> {
  try {
    await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(endpoint: string): Promise<void> {
  while (await answers(endpoint)) await delay(100);
}

describe('java detection', () => {
  it('parses old and new `java -version` formats', () => {
    expect(parseJavaVersion('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime')).toBe(17);
    expect(parseJavaVersion('java version "1.8.0_292"')).toBe(8);
    expect(parseJavaVersion('openjdk version "21" 2023-09-19')).toBe(21);
    expect(parseJavaVersion('openjdk version "11.0.2-ea"')).toBe(11);
    expect(parseJavaVersion('bash: java: command not found')).toBeUndefined();
  });

  it('finds the installed Java 17+', async () => {
    expect(await checkJava()).toBeGreaterThanOrEqual(17);
  });

  it('fails with a one-line how-to when java is not on PATH', async () => {
    const emptyBin = await tempDir();
    const start = startDynamoDbLocal({ env: { PATH: emptyBin } });
    await expect(start).rejects.toBeInstanceOf(JavaUnavailableError);
    const error = (await start.catch((e: unknown) => e)) as JavaUnavailableError;
    expect(error.found).toBe('missing');
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain('apt-get install openjdk-17-jre-headless');
    expect(error.message).toContain('AIGW_DYNAMODB_ENDPOINT');
    expect(error.message).toContain('[dynamodb] endpoint');
  });

  it('rejects a Java older than 17 and says which one it found', async () => {
    const bin = await tempDir();
    const fakeJava = join(bin, 'java');
    await writeFile(fakeJava, '#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n');
    await chmod(fakeJava, 0o755);
    const error = (await checkJava({ PATH: bin }).catch((e: unknown) => e)) as JavaUnavailableError;
    expect(error).toBeInstanceOf(JavaUnavailableError);
    expect(error.found).toBe(11);
    expect(error.message).toContain('found Java 11');
  });
});

describe('startDynamoDbLocal', () => {
  it('serves an in-memory database on a free port and stop() ends the process', async () => {
    const local = await startDynamoDbLocal();
    expect(local.endpoint).toBe(`http://127.0.0.1:${local.port}`);
    const client = createDynamoDbClient({
      endpoint: local.endpoint,
      region: 'us-east-1',
      credentials: local.credentials,
    });
    const tables = await client.send(new ListTablesCommand({}));
    expect(tables.TableNames).toEqual([]);
    await local.stop();
    expect(await answers(local.endpoint)).toBe(false);
    await local.stop();
  });

  it('keeps data and credentials in dataDir across restarts', async () => {
    const dataDir = await tempDir();
    const key = itemKeys.alias('demo');
    const first = await startDynamoDbLocal({ dataDir });
    try {
      const client = createDynamoDbClient({
        endpoint: first.endpoint,
        region: 'us-east-1',
        credentials: first.credentials,
      });
      await ensureTable(client, tableSchema('persisted'));
      await client.send(new PutCommand({ TableName: 'persisted', Item: { ...key, version: 'v2' } }));
    } finally {
      await first.stop();
    }
    const saved = JSON.parse(await readFile(join(dataDir, 'local-credentials.json'), 'utf8'));
    expect(saved).toEqual(first.credentials);

    const second = await startDynamoDbLocal({ dataDir });
    try {
      expect(second.credentials).toEqual(first.credentials);
      const client = createDynamoDbClient({
        endpoint: second.endpoint,
        region: 'us-east-1',
        credentials: second.credentials,
      });
      const got = await client.send(new GetCommand({ TableName: 'persisted', Key: key }));
      expect(got.Item).toEqual({ ...key, version: 'v2' });
    } finally {
      await second.stop();
    }
  });

  it('gives each in-memory run its own credentials, so other clients see none of its tables', async () => {
    const local = await startDynamoDbLocal();
    try {
      const owner = createDynamoDbClient({
        endpoint: local.endpoint,
        region: 'us-east-1',
        credentials: local.credentials,
      });
      await ensureTable(owner, tableSchema('private'));
      const stranger = createDynamoDbClient({
        endpoint: local.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'someoneelse', secretAccessKey: 'x' },
      });
      expect((await stranger.send(new ListTablesCommand({}))).TableNames).toEqual([]);
      expect((await owner.send(new ListTablesCommand({}))).TableNames).toEqual(['private']);
    } finally {
      await local.stop();
    }
  });

  it('refuses a fixed port that is already in use and leaves its holder alone', async () => {
    const holder = await startDynamoDbLocal();
    try {
      const clash = startDynamoDbLocal({ port: holder.port });
      await expect(clash).rejects.toBeInstanceOf(DynamoDbLocalStartError);
      await expect(clash).rejects.toThrow(`port ${holder.port} is already in use`);
      expect(await answers(holder.endpoint)).toBe(true);
    } finally {
      await holder.stop();
    }
  });
});

describe('startDynamoDbLocal counts only its own java as started', () => {
  // The race behind a rare CI failure (`could not set up table aigw ...: UnknownError`): the probe
  // releases the port, another process takes it and answers HTTP, and java then fails to bind.
  // Here a fake java plays both parts: it answers on the port without ever saying it bound it,
  // then exits as java does when the port is taken.
  it('an HTTP answer on the port is not enough: the start fails when java exits', async () => {
    const bin = await tempDir();
    const imposter = [
      "const port = Number(process.argv[process.argv.indexOf('-port') + 1]);",
      "const server = require('node:http').createServer((req, res) => res.writeHead(400).end('{}'));",
      "server.listen(port, '127.0.0.1', () => console.log('Initializing DynamoDB Local'));",
      "setTimeout(() => { console.error('java.net.BindException: Address already in use'); process.exit(1); }, 1500);",
    ].join('\n');
    await writeFile(join(bin, 'imposter.cjs'), imposter);
    await writeFile(
      join(bin, 'java'),
      `#!/bin/sh\ncase " $* " in *" -version "*) echo 'openjdk version "17.0.15" 2025-04-15' >&2; exit 0;; esac\nexec "${process.execPath}" "${join(bin, 'imposter.cjs')}" "$@"\n`,
    );
    await chmod(join(bin, 'java'), 0o755);
    const free = createServer().listen(0, '127.0.0.1');
    await once(free, 'listening');
    const { port } = free.address() as AddressInfo;
    await new Promise((closed) => free.close(closed));
    const start = startDynamoDbLocal({ port, env: { PATH: bin } });
    await expect(start).rejects.toBeInstanceOf(DynamoDbLocalStartError);
    await expect(start).rejects.toThrow(/exited during start.*Address already in use/s);
  });
});

describe('no orphan Java process when the parent goes away', () => {
  const moduleUrl = pathToFileURL(join(repoRoot, 'src/store/dynamodb-local.ts')).href;
  const script = `
    import { startDynamoDbLocal } from ${JSON.stringify(moduleUrl)};
    const local = await startDynamoDbLocal();
    process.stdout.write(JSON.stringify({ endpoint: local.endpoint }) + '\\n');
    if (process.argv[2] === 'exit') process.exit(0);
    setInterval(() => undefined, 1_000);
  `;

  async function runParent(mode: 'exit' | 'SIGTERM' | 'SIGINT'): Promise<void> {
    const dir = await tempDir();
    const scriptPath = join(dir, 'parent.mts');
    await writeFile(scriptPath, script);
    const parent = spawn(process.execPath, ['--import', 'tsx', scriptPath, mode], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((done) => parent.once('exit', () => done()));
    const endpoint = await new Promise<string>((done, fail) => {
      let out = '';
      parent.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) done((JSON.parse(line) as { endpoint: string }).endpoint);
      });
      parent.once('exit', (code) => fail(new Error(`parent exited early (code ${code})`)));
    });
    if (mode !== 'exit') {
      expect(await answers(endpoint)).toBe(true);
      parent.kill(mode);
    }
    await exited;
    await waitUntilGone(endpoint);
    expect(await answers(endpoint)).toBe(false);
  }

  it('kills DynamoDB Local on SIGTERM of the parent', async () => {
    await runParent('SIGTERM');
  });

  it('kills DynamoDB Local on SIGINT of the parent', async () => {
    await runParent('SIGINT');
  });

  it('kills DynamoDB Local when the parent exits', async () => {
    await runParent('exit');
  });
});
