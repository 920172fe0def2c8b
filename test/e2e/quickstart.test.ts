// The README's quick start, the way a newcomer runs it: `aigw serve` in a fresh folder (DynamoDB
// Local, demo model build, first-run key), then the printed curl line, then Ctrl-C.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { startAigwServe } from '../helpers/aigw-serve.js';

let folder: string;

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

it('serves in a fresh folder, the printed curl line works, and Ctrl-C leaves no process behind', async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'aigw-quickstart-'));
  // The first-run help ends with the SDK snippet; wait until it is all there.
  const server = await startAigwServe(folder, [], { until: /More keys:/ });
  const output = server.output();
  const curl = output.slice(output.indexOf('  curl ')).split('\n\n')[0]!;
  expect(curl).toMatch(/Authorization: Bearer aigw-[A-Za-z0-9]{40}/);
  const running = JSON.parse(await readFile(path.join(folder, '.aigw/dynamodb/running.json'), 'utf8'));

  const { stdout } = await promisify(execFile)('bash', ['-c', curl]);
  const reply = JSON.parse(stdout);
  expect(reply.object).toBe('chat.completion');
  expect(typeof reply.choices[0].message.content).toBe('string');

  expect(await server.stop()).toBe(0);
  // DynamoDB Local was a child of the server; no java process may outlive it.
  const port = new URL(running.endpoint).port;
  const { stdout: processes } = await promisify(execFile)('ps', ['-eo', 'pid,args']);
  const java = processes.split('\n').filter((line) => line.includes('DynamoDBLocal') && line.includes(`-port ${port}`));
  expect(java).toEqual([]);
});
