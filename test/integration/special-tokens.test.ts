// Special tokens as the tokenizer and configs define them: plain-text prompts get the BOS the
// post-processor adds, exactly as Hugging Face `tokenizer(text)` (transformers.js on the same
// tokenizer.json) — a Llama-style post-processor with BOS and a Qwen-style one without — and EOS ids
// come from generation_config.json's list as well as the model config.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, loadModel, unloadAllModels, type LoadedModel } from '../../src/engine/index.js';
import { packModelFolder, readManifest } from '../../src/models/index.js';
import { BEGIN_OF_TEXT, EOT_ID, writeLlama3StyleTokenizerFiles } from '../../tools/model-builder/llama3-tokenizer.js';
import { buildModelPackage } from '../../tools/model-builder/package-writer.js';
import { presetShape } from '../../tools/model-builder/presets.js';
import { ensureTestModel } from '../helpers/test-models.js';

const TEXTS = [
  'Hello world',
  ' leading space and  double  spaces',
  'The library opens at nine.\nIt closes at six.',
  'emoji 🌊 and 海 and code: const x = a[i] + 1;',
];
// Where aigw departs from tokenizer(text) on purpose: user text never becomes a control token.
const LITERAL_SPECIALS = 'literal <|begin_of_text|> and <|im_end|> text stays text';

let scratch: string;
const dirs: Record<'llama' | 'qwen' | 'llamaGenai', string> = { llama: '', qwen: '', llamaGenai: '' };

async function editJson(file: string, edit: (value: any) => void): Promise<void> {
  const value = JSON.parse(await readFile(file, 'utf8'));
  edit(value);
  await writeFile(file, JSON.stringify(value, null, 2));
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'aigw-special-'));
  const common = { precision: 'fp32' as const, shape: presetShape('tiny'), seed: 42, version: '1', tokenizer: writeLlama3StyleTokenizerFiles };
  dirs.llama = path.join(scratch, 'llama-style');
  await buildModelPackage({ ...common, outDir: dirs.llama, layout: 'optimum', name: 'llama-style' });
  // As Llama 3 Instruct ships: config.json names one EOS, generation_config.json both.
  await editJson(path.join(dirs.llama, 'config.json'), (c) => (c.eos_token_id = c.eos_token_id[1]));
  await packModelFolder(dirs.llama, { name: 'llama-style', version: '1' });

  dirs.llamaGenai = path.join(scratch, 'llama-style-genai');
  await buildModelPackage({ ...common, outDir: dirs.llamaGenai, layout: 'genai', name: 'llama-style-genai' });
  await editJson(path.join(dirs.llamaGenai, 'genai_config.json'), (c) => (c.model.eos_token_id = c.model.eos_token_id[1]));
  await writeFile(path.join(dirs.llamaGenai, 'generation_config.json'), JSON.stringify({ eos_token_id: [2043, 2047] }));
  await packModelFolder(dirs.llamaGenai, { name: 'llama-style-genai', version: '1' });

  dirs.qwen = await ensureTestModel({ layout: 'optimum', precision: 'fp32' });
  env.allowRemoteModels = false;
  env.useFSCache = false;
});

afterAll(async () => {
  await unloadAllModels();
  await rm(scratch, { recursive: true, force: true });
});

async function transformersIds(dir: string, text: string): Promise<number[]> {
  env.localModelPath = path.dirname(dir);
  const tokenizer = await AutoTokenizer.from_pretrained(path.basename(dir), { local_files_only: true });
  return Array.from(tokenizer(text).input_ids.data as BigInt64Array, Number);
}

describe('BOS on plain-text prompts (/v1/completions)', () => {
  for (const style of ['llama', 'qwen'] as const) {
    it(`${style}-style post-processor: the same ids as transformers.js tokenizer(text)`, async () => {
      const model = await loadModel(dirs[style], { threads: 1 });
      for (const text of TEXTS) expect(model.encodeText(text)).toEqual(await transformersIds(dirs[style], text));
      const literal = model.encodeText(LITERAL_SPECIALS);
      expect(literal.slice(style === 'llama' ? 1 : 0).some((id) => model.tokenizer.isSpecial(id))).toBe(false);
      expect(await transformersIds(dirs[style], LITERAL_SPECIALS)).not.toEqual(literal);
      const bos = model.tokenizer.tokenToId(BEGIN_OF_TEXT);
      if (style === 'llama') {
        expect(bos).toBe(2046);
        expect(model.encodeText('Hello')[0]).toBe(bos);
        expect(model.encodeText('Hello')).toEqual([bos, ...model.tokenizer.encode('Hello')]);
      } else {
        expect(model.encodeText('Hello')).toEqual(model.tokenizer.encode('Hello'));
      }
    });
  }

  it('the BOS counts as a prompt token in usage', async () => {
    const model = await loadModel(dirs.llama, { threads: 1 });
    const ids = model.encodeText('Hello world');
    let promptTokens = 0;
    for await (const event of generate(model, ids, { temperature: 0, maxTokens: 2, ignoreEos: true })) {
      if (event.type === 'finish') promptTokens = event.usage.promptTokens;
    }
    expect(promptTokens).toBe(model.tokenizer.encode('Hello world').length + 1);
  });

  it('chat prompts get the BOS from the template only, once', async () => {
    const model = await loadModel(dirs.llama, { threads: 1 });
    const ids = model.encodeChat([{ role: 'user', content: 'Hi' }]);
    expect(ids[0]).toBe(2046);
    expect(ids.filter((id) => id === 2046)).toHaveLength(1);
  });
});

describe('EOS ids', () => {
  it("Optimum: generation_config.json's list (Llama 3's two ids) although config.json names one", async () => {
    const config = JSON.parse(await readFile(path.join(dirs.llama, 'config.json'), 'utf8'));
    expect(config.eos_token_id).toBe(2047);
    const manifest = await readManifest(dirs.llama);
    expect([...manifest.eosTokenIds].sort()).toEqual([2043, 2047]);
    const model: LoadedModel = await loadModel(dirs.llama, { threads: 1 });
    expect(model.tokenizer.tokenToId(EOT_ID)).toBe(2047);
    expect([...model.eosTokenIds].sort()).toEqual([2043, 2047]);
  });

  it("onnxruntime-genai: genai_config's eos_token_id and generation_config.json's list together", async () => {
    const manifest = await readManifest(dirs.llamaGenai);
    expect([...manifest.eosTokenIds].sort()).toEqual([2043, 2047]);
    const model = await loadModel(dirs.llamaGenai, { threads: 1 });
    expect([...model.eosTokenIds].sort()).toEqual([2043, 2047]);
  });
});
