// The engine end to end on the builder's tiny packages: real onnxruntime sessions, real
// tokenizer, both layouts; generation events, sampling, stops, limits, abort and bad packages.
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EngineError,
  generate,
  loadModel,
  unloadAllModels,
  type GenerationEvent,
  type GenerationOptions,
  type LoadedModel,
} from '../../src/engine/index.js';
import { ModelPackageError, packModelFolder, readManifest, sha256File, writeManifest } from '../../src/models/index.js';
import { ensureTestModel } from '../helpers/test-models.js';

const MESSAGES = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'Write a short poem about the sea, with emoji 🌊 and 海.' },
];

async function run(model: LoadedModel, options: GenerationOptions, promptIds = model.encodeChat(MESSAGES)) {
  const events: GenerationEvent[] = [];
  for await (const event of generate(model, promptIds, options)) events.push(event);
  const tokens = events.flatMap((e) => (e.type === 'token' ? [e.tokenId] : []));
  const text = events.map((e) => e.text).join('');
  const finish = events.at(-1);
  if (finish?.type !== 'finish') throw new Error('generation ended without a finish event');
  return { events, tokens, text, finish };
}

let optimum: LoadedModel;
let genai: LoadedModel;
let optimumQ4: LoadedModel;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-engine-'));
  optimum = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'fp32' }), { threads: 1 });
  genai = await loadModel(await ensureTestModel({ layout: 'genai', precision: 'fp32' }), { threads: 1 });
  optimumQ4 = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
});

afterAll(async () => {
  await unloadAllModels();
  await rm(scratch, { recursive: true, force: true });
});

describe('generation', () => {
  it('gives the same tokens in both layouts of the same weights, greedy and seeded', async () => {
    const greedy = { temperature: 0, maxTokens: 40, ignoreEos: true };
    const a = await run(optimum, greedy);
    expect(a.tokens).toHaveLength(40);
    expect((await run(genai, greedy)).tokens).toEqual(a.tokens);
    // Greedy decoding of random weights soon repeats one token; sampling walks through many states.
    const sampled = { temperature: 1, seed: 5, maxTokens: 40, ignoreEos: true };
    const c = await run(optimum, sampled);
    expect(new Set(c.tokens).size).toBeGreaterThan(10);
    expect((await run(genai, sampled)).tokens).toEqual(c.tokens);
  });

  it('reports usage and finish reason length at max_tokens', async () => {
    const prompt = optimum.encodeChat(MESSAGES);
    const { tokens, finish } = await run(optimum, { temperature: 0, maxTokens: 7, ignoreEos: true }, prompt);
    expect(tokens).toHaveLength(7);
    expect(finish).toMatchObject({ finishReason: 'length', usage: { promptTokens: prompt.length, completionTokens: 7 } });
  });

  it('streams text that adds up to the decoded tokens, never splitting a character', async () => {
    const { events, tokens, text } = await run(optimumQ4, { temperature: 1, seed: 7, maxTokens: 120, ignoreEos: true });
    expect(text).toBe(optimumQ4.tokenizer.decode(tokens, { skipSpecialTokens: true }));
    // Random weights emit stray bytes (U+FFFD in any decoder); what must never happen is a
    // character cut in two across events, which would show up as a lone surrogate.
    for (const event of events) expect(event.text.isWellFormed()).toBe(true);
  });

  it('repeats itself with the same seed and differs with another', async () => {
    const options = { temperature: 0.9, topP: 0.95, topK: 50, maxTokens: 30, ignoreEos: true };
    const first = await run(genai, { ...options, seed: 1234 });
    const again = await run(genai, { ...options, seed: 1234 });
    const other = await run(genai, { ...options, seed: 99 });
    expect(again.tokens).toEqual(first.tokens);
    expect(other.tokens).not.toEqual(first.tokens);
  });

  it('stops at a stop string and never leaks it', async () => {
    const full = await run(optimum, { temperature: 0, maxTokens: 40, ignoreEos: true });
    // A stop string taken from the middle of the greedy output, so we know it will occur.
    const start = Math.floor(full.text.length / 2);
    const stop = full.text.slice(start, start + 3);
    const stopped = await run(optimum, { temperature: 0, maxTokens: 40, ignoreEos: true, stop: ['\u0000never', stop] });
    expect(stopped.finish.finishReason).toBe('stop');
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(stopped.tokens.length).toBeLessThan(40);
  });

  it('ends with finish reason stop at an end-of-sequence token', async () => {
    // Random weights rarely pick EOS, so make the first greedy token an EOS token of a model view.
    const first = (await run(optimum, { temperature: 0, maxTokens: 1, ignoreEos: true })).tokens[0]!;
    const withEos: LoadedModel = { ...optimum, eosTokenIds: new Set([...optimum.eosTokenIds, first]) };
    const { tokens, text, finish } = await run(withEos, { temperature: 0, maxTokens: 10 });
    // EOS ends the stream without a token event of its own, but it is a generated token.
    expect(tokens).toEqual([]);
    expect(text).toBe('');
    expect(finish).toMatchObject({ finishReason: 'stop', usage: { completionTokens: 1 } });
  });

  it('aborts within one step', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const iterate = async () => {
      for await (const event of generate(optimum, optimum.encodeChat(MESSAGES), {
        temperature: 0,
        maxTokens: 100,
        ignoreEos: true,
        signal: controller.signal,
      })) {
        if (event.type === 'token') seen.push(event.tokenId);
        if (seen.length === 3) controller.abort();
      }
    };
    await expect(iterate()).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toHaveLength(3);
  });

  it('rejects a prompt longer than the context before running the model', async () => {
    const context = optimum.manifest.contextLength;
    const longPrompt = new Array(context + 1).fill(5);
    const events = generate(optimum, longPrompt, { maxTokens: 1 });
    await expect(events.next()).rejects.toMatchObject({ code: 'context_length_exceeded' });
    const fitsButNotWithMax = generate(optimum, new Array(context - 10).fill(5), { maxTokens: 20 });
    await expect(fitsButNotWithMax.next()).rejects.toThrow(/maximum context length is 2048 tokens/);
  });

  it('rejects more than four stop strings and bad sampling values', async () => {
    const prompt = optimum.encodeChat(MESSAGES);
    await expect(generate(optimum, prompt, { stop: ['a', 'b', 'c', 'd', 'e'] }).next()).rejects.toBeInstanceOf(EngineError);
    await expect(generate(optimum, prompt, { temperature: -1 }).next()).rejects.toThrow(/temperature/);
  });

  it('shares one session per model version', async () => {
    const again = await loadModel(optimum.dir, { threads: 1 });
    expect(again.session).toBe(optimum.session);
  });
});

describe('bad packages', () => {
  async function copyOf(source: string, name: string): Promise<string> {
    const dir = path.join(scratch, name);
    await cp(source, dir, { recursive: true });
    await rm(path.join(dir, '.aigw-verified'), { force: true });
    return dir;
  }

  /** Makes the manifest agree with a damaged file, so the damage reaches onnxruntime. */
  async function acceptDamage(dir: string, file: string) {
    const manifest = await readManifest(dir);
    Object.assign(manifest.files.find((f) => f.path === file)!, await sha256File(path.join(dir, file)));
    await writeManifest(dir, manifest);
  }

  it('refuses a file whose hash does not match the manifest', async () => {
    const dir = await copyOf(optimum.dir, 'hash');
    const file = path.join(dir, 'tokenizer_config.json');
    const bytes = await readFile(file);
    bytes[10] = bytes[10]! ^ 1;
    await writeFile(file, bytes);
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'hash_mismatch' });
  });

  it('gives a typed error for a truncated ONNX file, even when the manifest agrees', async () => {
    const dir = await copyOf(optimum.dir, 'truncated');
    await truncate(path.join(dir, optimum.manifest.onnxFile), 100);
    await acceptDamage(dir, optimum.manifest.onnxFile);
    await expect(loadModel(dir)).rejects.toMatchObject({ name: 'EngineError', code: 'model_load_failed' });
  });

  it('gives a typed error for a corrupt ONNX file', async () => {
    const dir = await copyOf(optimum.dir, 'corrupt');
    await writeFile(path.join(dir, optimum.manifest.onnxFile), Buffer.from('this is not a protobuf at all'.repeat(10)));
    await acceptDamage(dir, optimum.manifest.onnxFile);
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'model_load_failed' });
  });

  it('gives a typed error for a missing tokenizer', async () => {
    const dir = await copyOf(optimum.dir, 'no-tokenizer');
    await rm(path.join(dir, 'tokenizer.json'));
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'file_missing' });
  });

  it('gives a typed error for an unknown layout', async () => {
    const dir = path.join(scratch, 'unknown');
    await cp(optimum.dir, dir, { recursive: true });
    await rm(path.join(dir, 'config.json'));
    await rm(path.join(dir, 'manifest.json'));
    await expect(packModelFolder(dir)).rejects.toBeInstanceOf(ModelPackageError);
    await expect(packModelFolder(dir)).rejects.toMatchObject({ code: 'unknown_layout' });
  });
});
