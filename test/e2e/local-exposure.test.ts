// Nothing `aigw serve` starts on this machine (the gateway, DynamoDB Local) can be reached from a
// non-loopback address of this machine: each is tried on every address os.networkInterfaces()
// reports as not internal, after a control server on all interfaces proved those addresses reach.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let folder: string | undefined;

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** This machine's own addresses that are not loopback (IPv6 link-local ones need a scope: left out). */
function outsideAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && !(a.family === 'IPv6' && a.address.startsWith('fe80')))
    .map((a) => a!.address);
}

/** 'open' when a TCP connection to host:port is accepted, else the error code (ECONNREFUSED...). */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

it('keeps the gateway and DynamoDB Local on loopback', async () => {
  const addresses = outsideAddresses();
  expect(addresses.length, 'this machine has no non-loopback address to try').toBeGreaterThan(0);

  // The control: a server on every interface is reachable on those addresses, so a refusal below means something.
  const control = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => control.listen(0, resolve));
  const controlPort = (control.address() as AddressInfo).port;
  for (const address of addresses) expect(await tryConnect(address, controlPort)).toBe('open');
  await new Promise<void>((resolve) => control.close(() => resolve()));

  folder = await mkdtemp(path.join(tmpdir(), 'aigw-exposure-'));
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/aigw.mjs'), '--config', path.join(ROOT, 'aigw.toml'), 'serve', '--port', '0'], {
    cwd: folder,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    let match: RegExpExecArray | null;
    while (!(match = /is serving \S+ on http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(output))) {
      if (child.exitCode !== null) throw new Error(`aigw serve exited early:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const gatewayPort = Number(match[1]);
    const running = JSON.parse(await readFile(path.join(folder, '.aigw/dynamodb/running.json'), 'utf8')) as { endpoint: string };
    const dynamoPort = Number(new URL(running.endpoint).port);

    expect(await tryConnect('127.0.0.1', gatewayPort)).toBe('open');
    expect(await tryConnect('127.0.0.1', dynamoPort)).toBe('open');
    for (const address of addresses) {
      expect({ address, gateway: await tryConnect(address, gatewayPort) }).toEqual({ address, gateway: 'ECONNREFUSED' });
      expect({ address, dynamodb: await tryConnect(address, dynamoPort) }).toEqual({ address, dynamodb: 'ECONNREFUSED' });
    }
  } finally {
    child.kill('SIGINT');
    await exited;
  }
});
