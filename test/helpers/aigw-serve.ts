// Runs `aigw serve` as a user does (bin/aigw.mjs, the repo's aigw.toml, a folder of its own) and
// waits until it says where it serves; for the e2e tests of the local gateway.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const AIGW_BIN = path.join(ROOT, 'bin/aigw.mjs');
export const AIGW_CONFIG = path.join(ROOT, 'aigw.toml');

export interface ServingAigw {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** The base URL it printed (`http://127.0.0.1:<port>`, without /v1). */
  url: string;
  exited: Promise<number | null>;
  /** Ctrl-C, and its exit code. */
  stop(): Promise<number | null>;
}

/** `aigw serve --port 0 ...args` in `cwd`; resolves once it printed its URL and `until` matches its output. */
export async function startAigwServe(cwd: string, args: string[] = [], options: { env?: NodeJS.ProcessEnv; until?: RegExp } = {}): Promise<ServingAigw> {
  const child = spawn(process.execPath, [AIGW_BIN, '--config', AIGW_CONFIG, 'serve', '--port', '0', ...args], {
    cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const serving = /is serving \S+ on (http:\/\/\S+)\/v1/;
  while (!serving.test(output) || (options.until && !options.until.test(output))) {
    if (child.exitCode !== null) throw new Error(`aigw serve ${args.join(' ')} exited early:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    output: () => output,
    url: serving.exec(output)![1]!,
    exited,
    stop: () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}
