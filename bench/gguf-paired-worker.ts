// llama.cpp and aigw alternating in one process on the same GGUF weights (llama.cpp on the file,
// aigw on the package `aigw models import` made of it), for the GGUF rows of the engine benchmark.
// Runs in separate processes vary by up to 10 % on this machine, as much as the margin measured;
// alternating run by run, a slow spell slows both. Prints one JSON line.
import { type BenchCase, median, prepareAigw } from './engine-worker.js';
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
await aigw(8);
const llamaRuns = [];
const aigwRuns = [];
for (let i = 0; i < spec.aigw.repeats; i++) {
  llamaRuns.push(await llama.run(spec.llama.newTokens));
  aigwRuns.push(await aigw(spec.aigw.newTokens));
}
await llama.dispose();
const result: GgufPairedResult = {
  llamaMsPerToken: median(llamaRuns.map((r) => r.msPerToken)),
  aigwMsPerToken: median(aigwRuns.map((r) => r.msPerToken)),
  llamaTtftMs: median(llamaRuns.map((r) => r.ttftMs)),
  aigwTtftMs: median(aigwRuns.map((r) => r.ttftMs)),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
