// A GGUF file written by the builder, imported with `aigw models import`, served by `aigw serve`
// (= npm start) with AIGW_MODEL_PATH pointing at the package, and called with the official openai
// client; the greedy completion is llama.cpp's on the same file. F32 weights, where both engines
// compute in f32 and every token must match; quantized files agree with llama.cpp on most
// continuations, not all (test/integration/gguf-llama-cpp.test.ts says how many and why).
// Then the same file pulled from a (local) Hub by `aigw serve` itself (AIGW_MODEL_PULL).
import { spawn } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, expect, it } from 'vitest';
import { type LocalHub, startLocalHub } from '../helpers/hub-server.js';
import { TestGgufFiles, loadLlamaCpp } from '../helpers/test-gguf.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = 'tiny-qwen2-gguf';
const PROMPT = 'The morning was quiet when the first train left the station.';
const OPTIONS = { architecture: 'qwen2', fileType: 'F32', tokenizer: 'bpe-qwen2' } as const;

let files: TestGgufFiles | undefined;
let hub: LocalHub | undefined;
const stops: (() => Promise<number | null>)[] = [];

afterAll(async () => {
  for (const stop of stops) await stop();
  await hub?.close();
  await files?.remove();
});

/** `aigw serve --port 0` in `cwd` with `env`; resolves once the first-run key is printed. */
async function startServe(cwd: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/aigw.mjs'), '--config', path.join(ROOT, 'aigw.toml'), 'serve', '--port', '0'], {
    cwd,
    // A generous DynamoDB deadline: DynamoDB Local's first answers are slow on a loaded machine.
    env: { ...process.env, AIGW_DYNAMODB_TIMEOUT_MS: '10000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGINT');
    return exited;
  };
  stops.push(stop);
  while (!/More keys:/.test(output)) {
    if (child.exitCode !== null) throw new Error(`aigw serve exited early:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const url = /serving \S+ on (http:\/\/\S+)\/v1/.exec(output)![1];
  const apiKey = /Bearer (aigw-[A-Za-z0-9]{40})/.exec(output)![1];
  return { output, stop, client: new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 }) };
}

async function llamaCppGreedy(file: string, maxTokens: number): Promise<string> {
  const llama = await loadLlamaCpp();
  try {
    const model = await llama.loadModel({ modelPath: file });
    const context = await model.createContext({ contextSize: 256, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const out = [];
    for await (const token of context.getSequence().evaluate(model.tokenize(PROMPT), { temperature: 0 })) {
      out.push(token);
      if (out.length === maxTokens) break;
    }
    const text = model.detokenize(out);
    await context.dispose();
    await model.dispose();
    return text;
  } finally {
    await llama.dispose();
  }
}

it('serves an imported GGUF through npm start and the openai client, answering as llama.cpp does', async () => {
  files = await TestGgufFiles.create();
  const packageDir = await files.imported(OPTIONS);
  const { output, stop, client } = await startServe(files.dir, { AIGW_MODEL_PATH: packageDir, AIGW_MODEL_NAME: MODEL });
  expect(output).toMatch(new RegExp(`aigw is serving ${MODEL}@\\S+ on `));
  expect((await client.models.list()).data.map((m) => m.id)).toContain(MODEL);
  const completion = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 }, { headers: { 'x-aigw-skip-cache': 'true' } });
  expect(completion.usage?.completion_tokens).toBe(8);
  expect(completion.choices[0]!.text).toBe(await llamaCppGreedy(await files.gguf(OPTIONS), 8));

  const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 6, stream: true });
  let streamed = '';
  for await (const chunk of chat) streamed += chunk.choices[0]?.delta.content ?? '';
  expect(typeof streamed).toBe('string');

  expect(await stop()).toBe(0);
});

it('pulls a GGUF repo from a Hub (HF_ENDPOINT, here a local one) and serves it: AIGW_MODEL_PULL', async () => {
  files ??= await TestGgufFiles.create();
  const repo = path.join(files.dir, 'hub-repo');
  await mkdir(repo, { recursive: true });
  await cp(await files.gguf(OPTIONS), path.join(repo, 'tiny-F32.gguf'));
  hub = await startLocalHub({ 'test-org/tiny-gguf': repo });
  const cwd = path.join(files.dir, 'pull-cwd');
  await mkdir(cwd);
  const { output, stop, client } = await startServe(cwd, { AIGW_MODEL_PULL: 'test-org/tiny-gguf', HF_ENDPOINT: hub.url });
  expect(output).toMatch(/pulled test-org\/tiny-gguf@main \(gguf: tiny-F32.gguf\) into .*\.aigw\/models\/test-org--tiny-gguf/);
  expect(output).toMatch(/aigw is serving tiny-gguf@\S+ on /);
  const completion = await client.completions.create({ model: 'tiny-gguf', prompt: PROMPT, max_tokens: 8, temperature: 0 }, { headers: { 'x-aigw-skip-cache': 'true' } });
  expect(completion.choices[0]!.text).toBe(await llamaCppGreedy(await files.gguf(OPTIONS), 8));
  expect(await stop()).toBe(0);
});
