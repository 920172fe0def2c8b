import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { readManifest, verifyModelFolder, type ModelManifest } from '../models/index.js';
import { encodeChat, type ChatMessage } from './chat-template.js';
import { readDecoderIo, type DecoderIo, type DecoderIoHints } from './decoder-io.js';
import { EngineError } from './errors.js';
import { encodePrompt, type PromptInput } from './prompt.js';
import { loadTokenizer, type ModelTokenizer } from './tokenizer.js';

export interface LoadModelOptions {
  /** Intra-op threads; defaults to every core this process may use. */
  threads?: number;
}

/** A model package ready to generate: verified files, tokenizer, one shared ONNX session. */
export interface LoadedModel {
  readonly dir: string;
  readonly manifest: ModelManifest;
  readonly tokenizer: ModelTokenizer;
  readonly session: InferenceSession;
  readonly io: DecoderIo;
  readonly eosTokenIds: ReadonlySet<number>;
  /** Prompt token ids for chat messages, through the package's chat template. */
  encodeChat(messages: readonly ChatMessage[]): number[];
  /** Prompt token ids for plain text (the legacy completions API), with the post-processor's BOS as HF adds it. */
  encodeText(text: string): number[];
  /**
   * A request's prompt ids, refused early (context_length_exceeded) when it can't leave room for
   * `completionTokens` in the context, and tokenized without stalling other requests.
   */
  encodePrompt(input: PromptInput, completionTokens?: number): Promise<number[]>;
}

const loadedModels = new Map<string, Promise<LoadedModel>>();

/**
 * Loads a model package folder once per model version per process: concurrent and later
 * callers share the same session (sessions are safe to run from several sequences).
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const resolved = path.resolve(dir);
  const manifest = await readManifest(resolved);
  const key = `${resolved}#${manifest.name}@${manifest.version}`;
  let loading = loadedModels.get(key);
  if (!loading) {
    loading = createLoadedModel(resolved, manifest, options);
    loadedModels.set(key, loading);
    // A failed load must not poison the cache: the next caller tries again.
    loading.catch(() => loadedModels.delete(key));
  }
  return loading;
}

/** Releases every cached session (tests and graceful shutdown). */
export async function unloadAllModels(): Promise<void> {
  const models = [...loadedModels.values()];
  loadedModels.clear();
  for (const model of models) {
    await model.then((m) => m.session.release()).catch(() => undefined);
  }
}

async function createLoadedModel(dir: string, manifest: ModelManifest, options: LoadModelOptions): Promise<LoadedModel> {
  await verifyModelFolder(dir, manifest);
  const tokenizer = await loadTokenizer(dir);
  const onnxPath = path.join(dir, manifest.onnxFile);
  const session = await createSession(onnxPath, options);
  let io: DecoderIo;
  try {
    io = readDecoderIo(session, await readIoHints(dir, manifest));
  } catch (error) {
    await session.release();
    throw error;
  }
  const eosTokenIds = new Set([...manifest.eosTokenIds, ...tokenizer.eosTokenIds]);
  return {
    dir,
    manifest,
    tokenizer,
    session,
    io,
    eosTokenIds,
    encodeChat: (messages) => encodeChat(tokenizer, messages),
    encodeText: (text) => tokenizer.encodeWithSpecialTokens(text),
    encodePrompt: (input, completionTokens) => encodePrompt(tokenizer, input, manifest.contextLength, completionTokens),
  };
}

async function createSession(onnxPath: string, options: LoadModelOptions): Promise<InferenceSession> {
  try {
    return await ort.InferenceSession.create(onnxPath, {
      executionProviders: ['cpu'],
      // Decoding is one small matmul chain per token: all cores inside an op, one op at a time.
      intraOpNumThreads: options.threads ?? availableParallelism(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // The arena and memory patterns reuse allocations between the near-identical decode steps.
      enableCpuMemArena: true,
      enableMemPattern: true,
      logSeverityLevel: 3,
    });
  } catch (error) {
    throw new EngineError(
      'model_load_failed',
      `onnxruntime could not load ${onnxPath} (truncated or corrupt ONNX file?): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** genai_config.json names the cache tensors; config.json gives KV geometry when the graph's dims are symbolic. */
async function readIoHints(dir: string, manifest: ModelManifest): Promise<DecoderIoHints> {
  if (manifest.layout === 'genai') {
    const genai = await readJson(path.join(dir, 'genai_config.json'));
    const decoder = genai?.model?.decoder ?? {};
    return {
      pastKeyTemplate: decoder.inputs?.past_key_names,
      pastValueTemplate: decoder.inputs?.past_value_names,
      presentKeyTemplate: decoder.outputs?.present_key_names,
      presentValueTemplate: decoder.outputs?.present_value_names,
      kvHeads: decoder.num_key_value_heads,
      headDim: decoder.head_size,
      // onnxruntime-genai's own default when the key is absent is false: a growing cache.
      sharedKvBuffer: genai?.search?.past_present_share_buffer === true,
    };
  }
  const config = await readJson(path.join(dir, 'config.json'));
  const heads = config?.num_attention_heads;
  return {
    kvHeads: config?.num_key_value_heads ?? heads,
    headDim: config?.head_dim ?? (config?.hidden_size && heads ? config.hidden_size / heads : undefined),
  };
}

// Third-party config files, read leniently for a few optional fields; a missing one means "no hint".
async function readJson(file: string): Promise<any> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}
