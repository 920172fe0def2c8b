// One engine of a pair, kept loaded in its own process, running once per line it reads: the
// parent (bench/gguf-peer.ts) has llama.cpp and aigw take turns run by run, so that a slow spell
// of the machine slows both, without loading the two engines into one process (in the three runs
// of the former in-process pair, aigw measured 6-21 % slower there than in a process of its own,
// llama.cpp about the same).
//
// Protocol, one line each way: the parent writes the number of tokens to decode; the worker
// answers `@turn <json>` with a RunTiming (and once `@turn {"ready":true}` after loading).
// Other output (engine logs) goes past the parent unread.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RunOnce } from './alternate.js';
import type { BenchCase } from './engine-worker.js';
import type { LlamaCppCase } from './llama-cpp-worker.js';

export type TurnSpec = { engine: 'aigw'; spec: BenchCase } | { engine: 'llama.cpp'; spec: LlamaCppCase };

export const TURN_PREFIX = '@turn ';

async function main(): Promise<void> {
  const turnSpec = JSON.parse(process.argv[2]!) as TurnSpec;
  // Each process imports only its own engine.
  let run: RunOnce;
  let dispose = async () => {};
  if (turnSpec.engine === 'aigw') {
    const { prepareAigw } = await import('./engine-worker.js');
    run = await prepareAigw(turnSpec.spec);
  } else {
    const { prepareLlamaCpp } = await import('./llama-cpp-worker.js');
    ({ run, dispose } = await prepareLlamaCpp(turnSpec.spec));
  }
  process.stdout.write(`${TURN_PREFIX}${JSON.stringify({ ready: true })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const timing = await run(Number(line));
    process.stdout.write(`${TURN_PREFIX}${JSON.stringify(timing)}\n`);
  }
  await dispose();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
