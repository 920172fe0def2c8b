// Nothing `aigw serve` starts on this machine (the gateway, DynamoDB Local) can be reached from a
// non-loopback address of this machine: each is tried on every address os.networkInterfaces()
// reports as not internal, after a control server on all interfaces proved those addresses reach.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startAigwServe } from '../helpers/aigw-serve.js';

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
  const server = await startAigwServe(folder);
  try {
    const gatewayPort = Number(new URL(server.url).port);
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    const running = JSON.parse(await readFile(path.join(folder, '.aigw/dynamodb/running.json'), 'utf8')) as { endpoint: string };
    const dynamoPort = Number(new URL(running.endpoint).port);

    expect(await tryConnect('127.0.0.1', gatewayPort)).toBe('open');
    expect(await tryConnect('127.0.0.1', dynamoPort)).toBe('open');
    for (const address of addresses) {
      expect({ address, gateway: await tryConnect(address, gatewayPort) }).toEqual({ address, gateway: 'ECONNREFUSED' });
      expect({ address, dynamodb: await tryConnect(address, dynamoPort) }).toEqual({ address, dynamodb: 'ECONNREFUSED' });
    }
  } finally {
    await server.stop();
  }
});
