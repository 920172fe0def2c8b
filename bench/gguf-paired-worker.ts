// llama.cpp and aigw alternating in one process on the same GGUF weights (llama.cpp on the file,
// aigw on the package `aigw models import` made of it), for the GGUF rows of the engine benchmark.
// Runs in separate processes vary by up to 10 % on this machine, as much as the margin measured;
// alternating run by run, a slow spell slows both. Prints one JSON line.
import { type BenchCase, alternate, prepareAigw } from './engine-worker.js';
import { type LlamaCppCase, prepareLlamaCpp } from './llama-cpp-worker.js';

export interface GgufPairedCase {
  llama: LlamaCppCase;
  aigw: BenchCase;
}

export interface GgufPairedResult {
  llamaMsPerToken: number;
  aigwMsPerToken: number;
  llamaTtftMs: number;
  aigwTtftMs: number;
}

const spec = JSON.parse(process.argv[2]!) as GgufPairedCase;
const llama = await prepareLlamaCpp(spec.llama);
const aigw = await prepareAigw(spec.aigw);
const [l, a] = await alternate(llama.run, aigw, spec.aigw.repeats, spec.aigw.newTokens);
await llama.dispose();
const result: GgufPairedResult = { llamaMsPerToken: l.msPerToken, aigwMsPerToken: a.msPerToken, llamaTtftMs: l.ttftMs, aigwTtftMs: a.ttftMs };
process.stdout.write(`${JSON.stringify(result)}\n`);
