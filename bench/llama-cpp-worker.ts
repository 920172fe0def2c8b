// llama.cpp (node-llama-cpp's prebuilt CPU binary) decoding a GGUF file in its own process, for
// the GGUF rows of the engine benchmark. Prints one JSON line like engine-worker.ts's cases.
import { fileURLToPath } from 'node:url';
import { LlamaLogLevel, getLlama } from 'node-llama-cpp';
import { median, type RunTiming } from './alternate.js';
import type { CaseResult, Mode } from './engine-worker.js';

export interface LlamaCppCase {
  gguf: string;
  mode: Mode;
  promptIds: number[];
  newTokens: number;
  threads: number;
  repeats: number;
}

// node-llama-cpp samples from the top 40 unless told otherwise; topK 0 turns that off, so llama.cpp
// draws from the same distribution as aigw (top_p 0.9 over the whole vocabulary).
const SAMPLING = { temperature: 0.7, topP: 0.9, topK: 0 };

/** llama.cpp loaded and warmed up: run() decodes spec.promptIds plus newTokens once. */
export async function prepareLlamaCpp(spec: LlamaCppCase): Promise<{ run(newTokens: number): Promise<RunTiming>; dispose(): Promise<void> }> {
  const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: spec.gguf });
  // llama.cpp's defaults otherwise (F16 KV cache, its own batch size): the engine as users run it.
  const context = await model.createContext({ contextSize: 1024, threads: spec.threads });
  const run = async (newTokens: number) => {
    const sequence = context.getSequence();
    const start = performance.now();
    let first = 0;
    let count = 0;
    const options = spec.mode === 'greedy' ? { temperature: 0 } : { ...SAMPLING, seed: 1 };
    for await (const _token of sequence.evaluate(spec.promptIds as never, options)) {
      count++;
      if (count === 1) first = performance.now();
      if (count === newTokens) break;
    }
    const end = performance.now();
    sequence.dispose();
    return { ttftMs: first - start, msPerToken: (end - first) / (newTokens - 1) };
  };
  await run(8);
  const dispose = async () => {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  };
  return { run, dispose };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as LlamaCppCase;
  const { run, dispose } = await prepareLlamaCpp(spec);
  const timings = [];
  for (let i = 0; i < spec.repeats; i++) timings.push(await run(spec.newTokens));
  const msPerToken = median(timings.map((t) => t.msPerToken));
  const result: CaseResult = {
    ttftMs: median(timings.map((t) => t.ttftMs)),
    msPerToken,
    decodeTokensPerSecond: 1000 / msPerToken,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
  await dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
