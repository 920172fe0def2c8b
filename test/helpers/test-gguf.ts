// GGUF files written by the model builder for the import and llama.cpp tests: the tiny preset's
// seeded weights in either architecture, either tokenizer kind and F32/Q8_0/Q4_0/Q4_K_M, plus
// llama.cpp itself (node-llama-cpp's prebuilt CPU binary, never built or downloaded here).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type GgufVocab, byteLevelVocab, sentencePieceVocab } from '../../tools/model-builder/gguf-vocab.js';
import { type GgufArchitecture, type GgufFileType, writeGgufModel } from '../../tools/model-builder/gguf-writer.js';
import { presetShape } from '../../tools/model-builder/presets.js';
import { type GgufImportOptions, importGgufFile } from '../../src/models/gguf-import.js';
import { TEST_MODEL_SEED } from './test-models.js';

export type TokenizerKind = 'spm' | 'bpe-qwen2' | 'bpe-llama3';

export interface TestGgufOptions {
  architecture: GgufArchitecture;
  fileType: GgufFileType;
  tokenizer: TokenizerKind;
}

/** Writes GGUF files and their imported packages into one scratch folder per test file. */
export class TestGgufFiles {
  private readonly vocabs = new Map<TokenizerKind, Promise<GgufVocab>>();
  private readonly files = new Map<string, Promise<string>>();
  private readonly packages = new Map<string, Promise<string>>();
  private constructor(readonly dir: string) {}

  static async create(): Promise<TestGgufFiles> {
    return new TestGgufFiles(await mkdtemp(path.join(tmpdir(), 'aigw-gguf-')));
  }

  private vocab(kind: TokenizerKind): Promise<GgufVocab> {
    const size = presetShape('tiny').vocabSize;
    if (!this.vocabs.has(kind)) {
      this.vocabs.set(kind, kind === 'spm' ? sentencePieceVocab(size) : byteLevelVocab(size, kind === 'bpe-qwen2' ? 'qwen2' : 'llama-bpe'));
    }
    return this.vocabs.get(kind)!;
  }

  /** The GGUF file for these options (written once). */
  gguf(opts: TestGgufOptions): Promise<string> {
    const key = `${opts.architecture}-${opts.fileType}-${opts.tokenizer}`;
    if (!this.files.has(key)) {
      this.files.set(
        key,
        (async () => {
          const file = path.join(this.dir, `${key}.gguf`);
          await writeGgufModel({ file, shape: presetShape('tiny'), seed: TEST_MODEL_SEED, ...opts, vocab: await this.vocab(opts.tokenizer), name: key });
          return file;
        })(),
      );
    }
    return this.files.get(key)!;
  }

  /** The package `aigw models import` makes of that GGUF file (its defaults unless `as` says otherwise). */
  imported(opts: TestGgufOptions, as: Pick<GgufImportOptions, 'layout' | 'accuracyLevel'> = {}): Promise<string> {
    const { layout, accuracyLevel } = as;
    const key = `${opts.architecture}-${opts.fileType}-${opts.tokenizer}-${layout ?? 'default'}-${accuracyLevel ?? 'default'}`;
    if (!this.packages.has(key)) {
      this.packages.set(
        key,
        (async () => {
          const outDir = path.join(this.dir, `pkg-${key}`);
          await importGgufFile(await this.gguf(opts), { outDir, name: key, layout, accuracyLevel });
          return outDir;
        })(),
      );
    }
    return this.packages.get(key)!;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** llama.cpp on the CPU from node-llama-cpp's prebuilt binary; throws rather than build one. */
export async function loadLlamaCpp() {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  return getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: LlamaLogLevel.error });
}
