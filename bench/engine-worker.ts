// One engine benchmark case in its own process, so peak RSS belongs to that runner alone.
// Prints one JSON line: time to first token, decode rate and peak RSS. Run by bench/engine.ts.
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { generate, loadModel } from '../src/engine/index.js';
import { alternate, median, type RunOnce, type RunTiming } from './alternate.js';

export type { RunOnce, RunTiming };

export type Runner = 'aigw' | 'transformers.js' | 'floor';
export type Mode = 'greedy' | 'sampling';

export interface BenchCase {
  runner: Runner;
  mode: Mode;
  layout: 'optimum' | 'genai';
  modelDir: string;
  promptIds: number[];
  newTokens: number;
  threads: number;
  repeats: number;
}

export interface CaseResult extends RunTiming {
  decodeTokensPerSecond: number;
  peakRssMb: number;
}

const SAMPLING = { temperature: 0.7, topP: 0.9 };

/** aigw and the floor alternating in one process: per-token cost without process-to-process noise. */
export interface PairedResult {
  aigwMsPerToken: number;
  floorMsPerToken: number;
}

/** aigw greedy and sampling taking turns token by token in one process: what sampling costs over greedy. */
export interface ModesResult {
  greedyMsPerToken: number;
  samplingMsPerToken: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as BenchCase & { paired?: true | 'modes' };
  if (spec.paired === 'modes') {
    process.stdout.write(`${JSON.stringify(await modesInTurns(spec))}\n`);
    return;
  }
  if (spec.paired) {
    const floor = await prepareFloor(spec);
    const aigw = await prepareAigw(spec);
    const [f, a] = await alternate(floor, aigw, spec.repeats, spec.newTokens);
    const result: PairedResult = { aigwMsPerToken: a.msPerToken, floorMsPerToken: f.msPerToken };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const runOnce = await prepare(spec);
  await runOnce(8); // warm-up: first-run allocations and lazy initialisation stay out of the numbers
  const timings: RunTiming[] = [];
  for (let i = 0; i < spec.repeats; i++) timings.push(await runOnce(spec.newTokens));
  const ttftMs = median(timings.map((t) => t.ttftMs));
  const msPerToken = median(timings.map((t) => t.msPerToken));
  const result: CaseResult = {
    ttftMs,
    msPerToken,
    decodeTokensPerSecond: 1000 / msPerToken,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function prepare(spec: BenchCase): Promise<RunOnce> {
  if (spec.runner === 'aigw') return prepareAigw(spec);
  if (spec.runner === 'transformers.js') return prepareTransformers(spec);
  return prepareFloor(spec);
}

export async function prepareAigw(spec: BenchCase): Promise<RunOnce> {
  const model = await loadModel(spec.modelDir, { threads: spec.threads });
  const sampling = spec.mode === 'greedy' ? { temperature: 0 } : { ...SAMPLING, seed: 1 };
  return async (newTokens) => {
    const stamps: number[] = [];
    const start = performance.now();
    for await (const event of generate(model, spec.promptIds, { ...sampling, maxTokens: newTokens, ignoreEos: true })) {
      if (event.type === 'token') stamps.push(performance.now());
    }
    return timing(start, stamps, newTokens);
  };
}

/**
 * Greedy and sampling generations of one loaded model advanced token by token in turns: each
 * token's time (its decoder step, its draw and the engine around them) is taken with the other
 * mode's token just before it, so the machine's drift, which here moves a step by 20 % within
 * seconds, falls on both alike. Per run, the mean time of tokens 2..n; median over the runs.
 */
async function modesInTurns(spec: BenchCase): Promise<ModesResult> {
  const model = await loadModel(spec.modelDir, { threads: spec.threads });
  const run = async (newTokens: number): Promise<ModesResult> => {
    const options = { maxTokens: newTokens, ignoreEos: true };
    const modes = [generate(model, spec.promptIds, { ...options, temperature: 0 }), generate(model, spec.promptIds, { ...options, ...SAMPLING, seed: 1 })];
    const decodeMs = [0, 0];
    const tokens = [0, 0];
    while (tokens[0]! < newTokens || tokens[1]! < newTokens) {
      for (const m of [0, 1]) {
        const start = performance.now();
        // One token event per call until the finish event: the first one includes the prefill.
        const { value } = await modes[m]!.next();
        if (value?.type !== 'token') continue;
        if (tokens[m]! > 0) decodeMs[m]! += performance.now() - start;
        tokens[m]!++;
      }
    }
    return { greedyMsPerToken: decodeMs[0]! / (newTokens - 1), samplingMsPerToken: decodeMs[1]! / (newTokens - 1) };
  };
  await run(8);
  const runs: ModesResult[] = [];
  for (let i = 0; i < spec.repeats; i++) runs.push(await run(spec.newTokens));
  return { greedyMsPerToken: median(runs.map((r) => r.greedyMsPerToken)), samplingMsPerToken: median(runs.map((r) => r.samplingMsPerToken)) };
}

async function prepareTransformers(spec: BenchCase): Promise<RunOnce> {
  const { AutoModelForCausalLM, Tensor: HfTensor, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = '/';
  const model = await AutoModelForCausalLM.from_pretrained(spec.modelDir, {
    dtype: 'q4',
    local_files_only: true,
    session_options: { intraOpNumThreads: spec.threads, interOpNumThreads: 1 },
  });
  const inputIds = new HfTensor('int64', BigInt64Array.from(spec.promptIds, BigInt), [1, spec.promptIds.length]);
  const attentionMask = new HfTensor('int64', new BigInt64Array(spec.promptIds.length).fill(1n), [1, spec.promptIds.length]);
  const sampling =
    spec.mode === 'greedy'
      ? { do_sample: false }
      : // top_k 0 switches off transformers.js' default top-k of 50. top_p is passed but not applied:
        // transformers.js 4.3.2 leaves its TopPLogitsWarper out of generation (a TODO), so it draws
        // with temperature alone over the whole vocabulary (after sorting it).
        { do_sample: true, temperature: SAMPLING.temperature, top_p: SAMPLING.topP, top_k: 0 };
  return async (newTokens) => {
    const stamps: number[] = [];
    let promptSeen = false;
    // generate() calls put() once with the prompt, then once per new token.
    const streamer = {
      put: () => (promptSeen ? stamps.push(performance.now()) : (promptSeen = true)),
      end: () => undefined,
    };
    const start = performance.now();
    await model.generate({
      input_ids: inputIds,
      attention_mask: attentionMask,
      max_new_tokens: newTokens,
      min_new_tokens: newTokens,
      streamer: streamer as never,
      ...sampling,
    });
    return timing(start, stamps, newTokens);
  };
}

/** The floor: session.run in a loop with feeds built ahead, no tokenizer, no sampling, no checks. */
async function prepareFloor(spec: BenchCase): Promise<RunOnce> {
  const session = await ort.InferenceSession.create(`${spec.modelDir}/${spec.layout === 'genai' ? 'model.onnx' : 'onnx/model_q4.onnx'}`, {
    intraOpNumThreads: spec.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
  const [kvHeads, headDim] = meta && meta.isTensor ? [meta.shape[1] as number, meta.shape[3] as number] : [0, 0];
  const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
  const kv = (length: number) => new ort.Tensor('float32', new Float32Array(kvHeads * length * headDim), [1, kvHeads, length, headDim]);
  const prompt = spec.promptIds;
  const nextToken = int64([prompt[0]!], [1, 1]);

  return async (newTokens) => {
    const maxLength = prompt.length + newTokens;
    // Every feed that does not depend on the previous step's output is built before the clock starts.
    const masks = Array.from({ length: newTokens }, (_, i) => int64(new Array(prompt.length + i).fill(1), [1, prompt.length + i]));
    const positions = Array.from({ length: newTokens }, (_, i) => int64(i === 0 ? prompt.map((_, j) => j) : [prompt.length + i - 1], [1, i === 0 ? prompt.length : 1]));
    const shared = spec.layout === 'genai' ? pastNames.map(() => kv(maxLength)) : [];
    const presentName = (past: string) => past.replace('past_key_values', 'present');
    let past: Record<string, Tensor> = Object.fromEntries(pastNames.map((n, i) => [n, spec.layout === 'genai' ? shared[i]! : kv(0)]));
    const fetches: Record<string, Tensor | null> = { logits: null };
    if (spec.layout === 'genai') pastNames.forEach((n, i) => (fetches[presentName(n)] = shared[i]!));

    const stamps: number[] = [];
    const start = performance.now();
    for (let i = 0; i < newTokens; i++) {
      const feeds: Record<string, Tensor> = {
        input_ids: i === 0 ? int64(prompt, [1, prompt.length]) : nextToken,
        attention_mask: masks[i]!,
        ...past,
      };
      if (session.inputNames.includes('position_ids')) feeds.position_ids = positions[i]!;
      const outputs: InferenceSession.ReturnType = await session.run(feeds, spec.layout === 'genai' ? fetches : undefined);
      if (spec.layout === 'optimum') past = Object.fromEntries(pastNames.map((n) => [n, outputs[presentName(n)]!]));
      stamps.push(performance.now());
    }
    return timing(start, stamps, newTokens);
  };
}

function timing(start: number, stamps: number[], expected: number): RunTiming {
  if (stamps.length !== expected) throw new Error(`expected ${expected} tokens, got ${stamps.length}`);
  return { ttftMs: stamps[0]! - start, msPerToken: (stamps.at(-1)! - stamps[0]!) / (stamps.length - 1) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
