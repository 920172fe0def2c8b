// `aigw models pull` against a local server speaking the Hub's download protocol (never the
// network): an ONNX export (the q4 decoder chosen, side files only), a GGUF repo (Q4_0 chosen,
// imported), downloads cut off mid-file that resume with a Range request, and a wrong hash.
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modelsCommand } from '../../src/cli/models-command.js';
import { generate, loadModel, unloadAllModels } from '../../src/engine/index.js';
import { pullModel } from '../../src/models/hub-pull.js';
import { readManifest } from '../../src/models/index.js';
import { type LocalHub, startLocalHub } from '../helpers/hub-server.js';
import { TestGgufFiles } from '../helpers/test-gguf.js';
import { ensureTestModel } from '../helpers/test-models.js';

let scratch: string;
let hub: LocalHub;
let ggufFiles: TestGgufFiles;
const Q4_DATA = 'onnx/model_q4.onnx_data';

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-pull-'));
  // An Optimum export with two decoders, as onnx-community repos have many; no manifest on the Hub.
  const onnxRepo = path.join(scratch, 'repo-onnx');
  await cp(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), onnxRepo, { recursive: true });
  await cp(path.join(await ensureTestModel({ layout: 'optimum', precision: 'fp32' }), 'onnx'), path.join(onnxRepo, 'onnx'), { recursive: true });
  for (const file of await readdir(onnxRepo)) if (file === 'manifest.json' || file.startsWith('.')) await rm(path.join(onnxRepo, file));
  // A GGUF repo with two quantizations of the same weights.
  ggufFiles = await TestGgufFiles.create();
  const ggufRepo = path.join(scratch, 'repo-gguf');
  for (const fileType of ['Q8_0', 'Q4_0'] as const) {
    await cp(await ggufFiles.gguf({ architecture: 'qwen2', fileType, tokenizer: 'bpe-qwen2' }), path.join(ggufRepo, `tiny-qwen2-${fileType}.gguf`));
  }
  hub = await startLocalHub({ 'test-org/tiny-onnx': onnxRepo, 'test-org/tiny-gguf': ggufRepo });
});

afterAll(async () => {
  await unloadAllModels();
  await hub?.close();
  await ggufFiles?.remove();
  await rm(scratch, { recursive: true, force: true });
});

async function greedy(dir: string): Promise<number[]> {
  const model = await loadModel(dir, { threads: 1 });
  const tokens: number[] = [];
  for await (const event of generate(model, model.tokenizer.encode('Hello there'), { temperature: 0, maxTokens: 6, ignoreEos: true })) {
    if (event.type === 'token') tokens.push(event.tokenId);
  }
  return tokens;
}

describe('an ONNX export', () => {
  it('downloads the q4 decoder with its data and side files, then packs and serves it', async () => {
    const outDir = path.join(scratch, 'pulled-onnx');
    const progress: number[] = [];
    const result = await pullModel({ repo: 'test-org/tiny-onnx', outDir, hubUrl: hub.url, onProgress: (p) => progress.push(p.downloadedBytes) });
    expect(result.kind).toBe('onnx');
    expect(result.files.sort()).toEqual(['config.json', 'generation_config.json', 'onnx/model_q4.onnx', Q4_DATA, 'tokenizer.json', 'tokenizer_config.json']);
    expect(result.manifest).toMatchObject({ name: 'tiny-onnx', version: '1', onnxFile: 'onnx/model_q4.onnx', precision: 'q4' });
    expect(progress.at(-1)).toBe(result.downloadedBytes);
    expect(await greedy(outDir)).toHaveLength(6);
  });

  it('resumes a download cut off mid-file with a Range request from the first missing byte', async () => {
    const outDir = path.join(scratch, 'pulled-resumed');
    hub.cutNext(Q4_DATA, 300_000);
    const before = hub.requests.length;
    const result = await pullModel({ repo: 'test-org/tiny-onnx', outDir, hubUrl: hub.url });
    const ranges = hub.requests.slice(before).filter((r) => r.url.endsWith(Q4_DATA) && r.range !== 'bytes=0-0').map((r) => r.range);
    // The first body stopped after 300,000 bytes; the retry asked only for what had not reached the
    // partial file (the bytes in flight when the connection broke may not have been written).
    const size = (await stat(path.join(outDir, Q4_DATA))).size;
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    const resumedFrom = Number(ranges[1]!.match(/^bytes=(\d+)-(\d+)$/)![1]);
    expect(ranges[1]).toBe(`bytes=${resumedFrom}-${size - 1}`);
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThanOrEqual(300_000);
    expect(result.manifest.files.find((f) => f.path === Q4_DATA)).toBeDefined();
    expect(await greedy(outDir)).toEqual(await greedy(path.join(scratch, 'pulled-onnx')));
  });

  it('keeps the partial file when every attempt fails, and the next pull resumes from it', async () => {
    const outDir = path.join(scratch, 'pulled-twice');
    hub.cutNext(Q4_DATA, 100_000);
    await expect(pullModel({ repo: 'test-org/tiny-onnx', outDir, hubUrl: hub.url, attempts: 1 })).rejects.toThrow(
      /downloading onnx\/model_q4.onnx_data failed after 1 attempts .*; run the pull again to resume/,
    );
    // Every byte written before the cut, as a fetch body hands them out (it drops what it still
    // queues when the connection errors, so not necessarily all 100,000 sent).
    const kept = (await stat(path.join(`${outDir}.download`, `${Q4_DATA}.part`))).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(100_000);
    const before = hub.requests.length;
    await pullModel({ repo: 'test-org/tiny-onnx', outDir, hubUrl: hub.url });
    const ranges = hub.requests.slice(before).filter((r) => r.url.endsWith(Q4_DATA) && r.range !== 'bytes=0-0').map((r) => r.range);
    expect(ranges).toHaveLength(1);
    expect(ranges[0]).toMatch(new RegExp(`^bytes=${kept}-\\d+$`));
    expect((await readManifest(outDir)).onnxFile).toBe('onnx/model_q4.onnx');
  });

  it('refuses a file whose SHA-256 is not the one in the Hub tree', async () => {
    hub.lie('onnx/model_q4.onnx', 'f'.repeat(64));
    try {
      await expect(pullModel({ repo: 'test-org/tiny-onnx', outDir: path.join(scratch, 'pulled-bad'), hubUrl: hub.url })).rejects.toThrow(
        /onnx\/model_q4.onnx downloaded with SHA-256 [0-9a-f]{64}, the Hub says f{64}; removed, pull again/,
      );
    } finally {
      hub.lie('onnx/model_q4.onnx', '');
    }
  });

  it('names a repo that is not there', async () => {
    await expect(pullModel({ repo: 'test-org/missing', outDir: path.join(scratch, 'missing'), hubUrl: hub.url })).rejects.toThrow(/cannot list test-org\/missing@main on the Hub/);
    await expect(pullModel({ repo: 'not a repo', outDir: path.join(scratch, 'x'), hubUrl: hub.url })).rejects.toThrow(/is not a Hub model id/);
  });
});

describe('a GGUF repo', () => {
  it('chooses Q4_0 (or the --file given), downloads it and imports it', async () => {
    const q4 = await pullModel({ repo: 'test-org/tiny-gguf', outDir: path.join(scratch, 'gguf-q4'), hubUrl: hub.url });
    expect(q4).toMatchObject({ kind: 'gguf', files: ['tiny-qwen2-Q4_0.gguf'] });
    const q8 = await pullModel({ repo: 'test-org/tiny-gguf', file: 'tiny-qwen2-Q8_0.gguf', outDir: path.join(scratch, 'gguf-q8'), hubUrl: hub.url });
    expect(q8.files).toEqual(['tiny-qwen2-Q8_0.gguf']);
    expect(await greedy(path.join(scratch, 'gguf-q4'))).toHaveLength(6);
    // The download folder is gone once the package is made.
    await expect(stat(path.join(scratch, 'gguf-q4.download'))).rejects.toThrow(/ENOENT/);
  });

  it('runs as `aigw models pull <repo> --file`', async () => {
    const out = path.join(scratch, 'gguf-cli');
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const program = new Command('aigw').exitOverride().addCommand(modelsCommand());
      await program.parseAsync(['models', 'pull', 'test-org/tiny-gguf', '--file', 'tiny-qwen2-Q8_0.gguf', '--out', out, '--hub-url', hub.url, '--no-progress'], { from: 'user' });
      expect(log.mock.calls.join('\n')).toMatch(/pulled test-org\/tiny-gguf@main \(gguf: tiny-qwen2-Q8_0.gguf\) into .*gguf-cli/);
    } finally {
      log.mockRestore();
    }
    expect((await readManifest(out)).name).toBe('tiny-gguf');
  });
});
