import { mkdir, mkdtemp, open, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MANIFEST_FILE,
  ModelPackageError,
  ONNX_DECODE_LIMIT_BYTES,
  PRECISION_PREFERENCE,
  VERIFIED_STAMP_FILE,
  chooseOnnxCandidate,
  packModelFolder,
  readManifest,
  verifyModelFolder,
  type ModelPackageErrorCode,
} from '../../src/models/index.js';

const { onnx } = onnxProto;

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aigw-model-package-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A real (tiny) ONNX model; `external` puts its weight in a separate file at that location. */
function onnxBytes(external?: string, constantExternal?: string): Uint8Array {
  const externalTensor = (name: string, location: string) => ({
    name,
    dims: [2],
    dataType: onnx.TensorProto.DataType.FLOAT,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: '0' },
      { key: 'length', value: '8' },
    ],
  });
  const weight = external
    ? externalTensor('w', external)
    : { name: 'w', dims: [2], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(8) };
  const nodes = constantExternal
    ? [
        {
          opType: 'Constant',
          output: ['c'],
          attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: externalTensor('c', constantExternal) }],
        },
      ]
    : [];
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'decoder', initializer: [weight], node: nodes },
  }).finish();
}

async function put(dir: string, file: string, content: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
  await writeFile(path.join(dir, file), content);
}

const json = (value: unknown): string => JSON.stringify(value);

async function tokenizerFiles(dir: string): Promise<void> {
  await put(dir, 'tokenizer.json', json({ version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } }));
  await put(dir, 'tokenizer_config.json', json({ chat_template: '{{ messages }}', eos_token: '</s>' }));
}

/** An Optimum / transformers.js export with the given onnx/ files (each a real ONNX, weights inline). */
async function optimumFolder(name: string, onnxNames: string[], config: Record<string, unknown> = {}): Promise<string> {
  const dir = path.join(root, name);
  await put(dir, 'config.json', json({ model_type: 'llama', max_position_embeddings: 2048, eos_token_id: 2, bos_token_id: 1, ...config }));
  await tokenizerFiles(dir);
  for (const onnxName of onnxNames) await put(dir, `onnx/${onnxName}`, onnxBytes());
  return dir;
}

/** An onnxruntime-genai export: model.onnx + model.onnx.data at the top, genai_config.json. */
async function genaiFolder(name: string): Promise<string> {
  const dir = path.join(root, name);
  await put(
    dir,
    'genai_config.json',
    json({
      model: {
        bos_token_id: 1,
        context_length: 4096,
        decoder: { filename: 'model.onnx', head_size: 64 },
        eos_token_id: [32000, 32001, 32007],
        type: 'phi3',
      },
      search: { max_length: 4096 },
    }),
  );
  await put(dir, 'model.onnx', onnxBytes('model.onnx.data'));
  await put(dir, 'model.onnx.data', new Uint8Array(8).fill(7));
  await tokenizerFiles(dir);
  await put(dir, 'special_tokens_map.json', json({ eos_token: '<|endoftext|>' }));
  return dir;
}

async function expectCode(promise: Promise<unknown>, code: ModelPackageErrorCode): Promise<ModelPackageError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ModelPackageError);
  expect((error as ModelPackageError).code).toBe(code);
  return error as ModelPackageError;
}

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');
const FIXED_TIME = new Date('2024-01-01T00:00:00Z');

/** Flips the first byte in place and restores the mtime: same size, same mtime, other content. */
async function corruptKeepingSizeAndMtime(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  const first = Buffer.alloc(1);
  await handle.read(first, 0, 1, 0);
  await handle.write(Buffer.from([first[0] ^ 0xff]), 0, 1, 0);
  await handle.close();
  await utimes(file, FIXED_TIME, FIXED_TIME);
}

describe('packModelFolder: layouts', () => {
  it('packs an onnxruntime-genai export from genai_config.json', async () => {
    const dir = await genaiFolder('phi-genai');
    const manifest = await packModelFolder(dir);
    expect(manifest).toMatchObject({
      schemaVersion: 1,
      name: 'phi-genai',
      version: '1',
      layout: 'genai',
      onnxFile: 'model.onnx',
      contextLength: 4096,
      eosTokenIds: [32000, 32001, 32007],
      bosTokenId: 1,
      price: { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 },
    });
    expect(manifest.precision).toBeUndefined();
    expect(manifest.files.map((file) => file.path)).toEqual([
      'genai_config.json',
      'model.onnx',
      'model.onnx.data',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const data = manifest.files.find((file) => file.path === 'model.onnx.data');
    expect(data).toEqual({ path: 'model.onnx.data', size: 8, sha256: sha256(new Uint8Array(8).fill(7)) });
  });

  it('uses the decoder file name genai_config.json gives', async () => {
    const dir = await genaiFolder('genai-named');
    const config = JSON.parse(await readFile(path.join(dir, 'genai_config.json'), 'utf8'));
    config.model.decoder.filename = 'phi3-mini-int4.onnx';
    await put(dir, 'genai_config.json', json(config));
    await rm(path.join(dir, 'model.onnx'));
    await put(dir, 'phi3-mini-int4.onnx', onnxBytes('model.onnx.data'));
    const manifest = await packModelFolder(dir);
    expect(manifest.onnxFile).toBe('phi3-mini-int4.onnx');
    expect(manifest.files.map((file) => file.path)).toContain('model.onnx.data');
    expect(manifest.files.map((file) => file.path)).not.toContain('model.onnx');
  });

  it('packs an Optimum export from config.json + onnx/*.onnx, hashing only the chosen ONNX', async () => {
    const dir = await optimumFolder('llama-optimum', ['model.onnx', 'model_q4.onnx', 'model_fp16.onnx']);
    await put(dir, 'generation_config.json', json({ eos_token_id: 2 }));
    const manifest = await packModelFolder(dir, {
      name: 'tiny-llama',
      version: '2024-06',
      priceMicrosPerMillion: { input: 150_000, output: 600_000 },
    });
    expect(manifest).toMatchObject({
      name: 'tiny-llama',
      version: '2024-06',
      layout: 'optimum',
      onnxFile: 'onnx/model_q4.onnx',
      precision: 'q4',
      contextLength: 2048,
      eosTokenIds: [2],
      bosTokenId: 1,
      price: { inputMicrosPerMillionTokens: 150_000, outputMicrosPerMillionTokens: 600_000 },
    });
    expect(manifest.files.map((file) => file.path)).toEqual([
      'config.json',
      'generation_config.json',
      'onnx/model_q4.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });

  it('rejects a folder that is neither layout', async () => {
    const dir = path.join(root, 'pytorch-only');
    await tokenizerFiles(dir);
    await put(dir, 'model.safetensors', 'weights');
    const error = await expectCode(packModelFolder(dir), 'unknown_layout');
    expect(error.message).toContain('genai_config.json');
    expect(error.message).toContain('config.json');
  });

  it('says onnx_missing when config.json has no onnx/ folder', async () => {
    const dir = await optimumFolder('no-onnx', []);
    await expectCode(packModelFolder(dir), 'onnx_missing');
  });

  it('says onnx_missing when onnx/ holds no decoder', async () => {
    const dir = await optimumFolder('encoder-only', ['encoder_model.onnx']);
    await expectCode(packModelFolder(dir), 'onnx_missing');
  });
});

describe('packModelFolder: choosing the ONNX file', () => {
  it('follows the documented preference order', () => {
    const all = ['model.onnx', 'model_q4.onnx', 'model_quantized.onnx', 'model_int8.onnx', 'model_uint8.onnx', 'model_bnb4.onnx', 'model_q4f16.onnx', 'model_fp16.onnx'];
    const precisions: Record<string, string> = {
      'model.onnx': 'fp32',
      'model_quantized.onnx': 'q8',
    };
    let candidates = all.map((name) => ({
      path: `onnx/${name}`,
      precision: precisions[name] ?? name.slice('model_'.length, -'.onnx'.length),
    }));
    const chosenInOrder: string[] = [];
    while (candidates.length > 0) {
      const chosen = chooseOnnxCandidate(candidates);
      chosenInOrder.push(chosen.precision);
      candidates = candidates.filter((candidate) => candidate !== chosen);
    }
    expect(chosenInOrder).toEqual([...PRECISION_PREFERENCE]);
    expect(chosenInOrder.slice(0, 2)).toEqual(['q4', 'q8']);
  });

  it('prefers model_* over decoder_model_merged_* and ranks unknown precisions last', () => {
    expect(
      chooseOnnxCandidate([
        { path: 'onnx/model_q2k.onnx', precision: 'q2k' },
        { path: 'onnx/decoder_model_merged_int8.onnx', precision: 'int8' },
        { path: 'onnx/model_int8.onnx', precision: 'int8' },
      ]).path,
    ).toBe('onnx/model_int8.onnx');
  });

  it('maps file names to precisions when packing (model_quantized is q8)', async () => {
    const dir = await optimumFolder('q8-only', ['model_quantized.onnx', 'model_fp16.onnx']);
    const manifest = await packModelFolder(dir);
    expect(manifest.onnxFile).toBe('onnx/model_quantized.onnx');
    expect(manifest.precision).toBe('q8');
  });

  it('honours preferPrecision, and falls back to the order when it is absent', async () => {
    const dir = await optimumFolder('prefer', ['model.onnx', 'model_q4.onnx', 'model_int8.onnx']);
    expect((await packModelFolder(dir, { preferPrecision: 'fp32' })).onnxFile).toBe('onnx/model.onnx');
    expect((await packModelFolder(dir, { preferPrecision: 'int8' })).onnxFile).toBe('onnx/model_int8.onnx');
    expect((await packModelFolder(dir, { preferPrecision: 'fp16' })).onnxFile).toBe('onnx/model_q4.onnx');
  });

  it('takes an explicit onnxFile, as a path or a bare name under onnx/', async () => {
    const dir = await optimumFolder('explicit', ['model.onnx', 'model_q4.onnx', 'model_fp16.onnx']);
    const byPath = await packModelFolder(dir, { onnxFile: 'onnx/model_fp16.onnx' });
    expect(byPath.onnxFile).toBe('onnx/model_fp16.onnx');
    expect(byPath.precision).toBe('fp16');
    expect((await packModelFolder(dir, { onnxFile: 'model.onnx' })).onnxFile).toBe('onnx/model.onnx');
    await expectCode(packModelFolder(dir, { onnxFile: 'model_int8.onnx' }), 'onnx_missing');
    await expectCode(packModelFolder(dir, { onnxFile: '../explicit/onnx/model.onnx' }), 'onnx_missing');
  });
});

describe('packModelFolder: external data', () => {
  it('hashes the external-data files the ONNX names, whatever they are called', async () => {
    const dir = await optimumFolder('external', []);
    await put(dir, 'onnx/model_q4.onnx', onnxBytes('weights.bin', 'constants.bin'));
    await put(dir, 'onnx/weights.bin', new Uint8Array(8));
    await put(dir, 'onnx/constants.bin', new Uint8Array(8));
    await put(dir, 'onnx/model_q4.onnx_data', 'not referenced by this model');
    const manifest = await packModelFolder(dir);
    const paths = manifest.files.map((file) => file.path);
    expect(paths).toContain('onnx/weights.bin');
    expect(paths).toContain('onnx/constants.bin');
    expect(paths).not.toContain('onnx/model_q4.onnx_data');
  });

  it('fails with file_missing when named external data is absent', async () => {
    const dir = await optimumFolder('external-missing', []);
    await put(dir, 'onnx/model.onnx', onnxBytes('model.onnx_data'));
    const error = await expectCode(packModelFolder(dir), 'file_missing');
    expect(error.file).toBe('onnx/model.onnx_data');
  });

  it('takes the usual data-file names next to an ONNX too large to decode', async () => {
    const dir = await optimumFolder('large', []);
    const big = path.join(dir, 'onnx', 'model.onnx');
    await put(dir, 'onnx/model.onnx', '');
    await truncate(big, ONNX_DECODE_LIMIT_BYTES + 1);
    for (const name of ['model.onnx_data', 'model.onnx.data', 'model.onnx_data_1', 'model_q4.onnx_data', 'other.bin']) {
      await put(dir, `onnx/${name}`, name);
    }
    const manifest = await packModelFolder(dir);
    expect(manifest.files.filter((file) => file.path.startsWith('onnx/')).map((file) => file.path)).toEqual([
      'onnx/model.onnx',
      'onnx/model.onnx.data',
      'onnx/model.onnx_data',
      'onnx/model.onnx_data_1',
    ]);
    expect(manifest.files.find((file) => file.path === 'onnx/model.onnx')?.size).toBe(ONNX_DECODE_LIMIT_BYTES + 1);
  });
});

describe('packModelFolder: tokens and config', () => {
  it('reads eos ids from config.json as a number or an array', async () => {
    const single = await optimumFolder('eos-number', ['model.onnx'], { eos_token_id: 7 });
    expect((await packModelFolder(single)).eosTokenIds).toEqual([7]);
    const many = await optimumFolder('eos-array', ['model.onnx'], { eos_token_id: [5, 6] });
    expect((await packModelFolder(many)).eosTokenIds).toEqual([5, 6]);
  });

  it('adds the eos ids of generation_config.json, first', async () => {
    const dir = await optimumFolder('eos-generation', ['model.onnx'], { eos_token_id: 128001 });
    await put(dir, 'generation_config.json', json({ eos_token_id: [128001, 128008, 128009], bos_token_id: 128000 }));
    const manifest = await packModelFolder(dir);
    expect(manifest.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(manifest.bosTokenId).toBe(128000);
  });

  it('reads eos ids from generation_config.json when config.json has none', async () => {
    const dir = await optimumFolder('eos-generation-only', ['model.onnx'], { eos_token_id: null });
    await put(dir, 'generation_config.json', json({ eos_token_id: 9 }));
    expect((await packModelFolder(dir)).eosTokenIds).toEqual([9]);
  });

  it('reads eos ids from genai_config.json', async () => {
    const dir = await genaiFolder('eos-genai');
    const config = JSON.parse(await readFile(path.join(dir, 'genai_config.json'), 'utf8'));
    config.model.eos_token_id = 151645;
    await put(dir, 'genai_config.json', json(config));
    expect((await packModelFolder(dir)).eosTokenIds).toEqual([151645]);
  });

  it('refuses a model with no eos id anywhere', async () => {
    const dir = await optimumFolder('no-eos', ['model.onnx'], { eos_token_id: null });
    await expectCode(packModelFolder(dir), 'config_missing');
  });

  it('needs a context length, from the config or the caller', async () => {
    const dir = await optimumFolder('no-context', ['model.onnx'], { max_position_embeddings: undefined });
    await expectCode(packModelFolder(dir), 'config_missing');
    expect((await packModelFolder(dir, { contextLength: 1024 })).contextLength).toBe(1024);
  });

  it('says config_missing for a config.json that is not JSON', async () => {
    const dir = await optimumFolder('bad-config', ['model.onnx']);
    await put(dir, 'config.json', '{ "max_position_embeddings": ');
    const error = await expectCode(packModelFolder(dir), 'config_missing');
    expect(error.file).toBe('config.json');
  });

  it('says file_missing, naming the file, when tokenizer.json is absent', async () => {
    const dir = await optimumFolder('no-tokenizer', ['model.onnx']);
    await rm(path.join(dir, 'tokenizer.json'));
    const error = await expectCode(packModelFolder(dir), 'file_missing');
    expect(error.file).toBe('tokenizer.json');
    expect(error.message).toContain('tokenizer.json');
  });

  it('rejects a non-integer price: money is never a float', async () => {
    const dir = await optimumFolder('float-price', ['model.onnx']);
    await expectCode(packModelFolder(dir, { priceMicrosPerMillion: { input: 0.5, output: 1 } }), 'manifest_invalid');
  });
});

describe('readManifest', () => {
  it('round-trips the manifest pack wrote', async () => {
    const dir = await genaiFolder('round-trip');
    const packed = await packModelFolder(dir, { priceMicrosPerMillion: { input: 1, output: 2 } });
    expect(await readManifest(dir)).toEqual(packed);
    const onDisk = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    expect(onDisk.files).toHaveLength(packed.files.length);
    expect(onDisk.files.map((file: { path: string }) => file.path)).not.toContain(MANIFEST_FILE);
  });

  it('says manifest_missing for a folder that was never packed', async () => {
    const dir = await genaiFolder('unpacked');
    const error = await expectCode(readManifest(dir), 'manifest_missing');
    expect(error.message).toContain('pack');
  });

  it('says manifest_invalid for a manifest that is not JSON', async () => {
    const dir = await genaiFolder('broken-json');
    await put(dir, MANIFEST_FILE, '{"schemaVersion": 1,');
    const error = await expectCode(readManifest(dir), 'manifest_invalid');
    expect(error.file).toBe(MANIFEST_FILE);
  });

  it('says manifest_invalid for a manifest that breaks the schema', async () => {
    const dir = await genaiFolder('bad-schema');
    const packed = await packModelFolder(dir);
    const cases: unknown[] = [
      { ...packed, schemaVersion: 2 },
      { ...packed, price: { inputMicrosPerMillionTokens: 0.25, outputMicrosPerMillionTokens: 0 } },
      { ...packed, files: [...packed.files, { path: '../outside.bin', size: 1, sha256: 'a'.repeat(64) }] },
      { ...packed, files: packed.files.filter((file) => file.path !== packed.onnxFile) },
      { ...packed, eosTokenIds: [] },
    ];
    for (const manifest of cases) {
      await put(dir, MANIFEST_FILE, json(manifest));
      await expectCode(readManifest(dir), 'manifest_invalid');
    }
  });
});

describe('verifyModelFolder', () => {
  async function packedAtFixedTime(name: string) {
    const dir = await genaiFolder(name);
    const manifest = await packModelFolder(dir);
    for (const file of manifest.files) await utimes(path.join(dir, file.path), FIXED_TIME, FIXED_TIME);
    return { dir, manifest };
  }

  it('verifies once, writes the stamp, and skips hashing while sizes and mtimes match', async () => {
    const { dir, manifest } = await packedAtFixedTime('stamp');
    await verifyModelFolder(dir, manifest);
    const stamp = JSON.parse(await readFile(path.join(dir, VERIFIED_STAMP_FILE), 'utf8'));
    expect(stamp.files).toHaveLength(manifest.files.length);
    expect(stamp.files[0].mtimeMs).toBe(FIXED_TIME.getTime());

    await corruptKeepingSizeAndMtime(path.join(dir, 'model.onnx.data'));
    // The stamp still matches, so nothing is hashed and the corruption goes unseen...
    await expect(verifyModelFolder(dir, manifest)).resolves.toBeUndefined();
    // ...until a forced verification hashes again.
    const error = await expectCode(verifyModelFolder(dir, manifest, { force: true }), 'hash_mismatch');
    expect(error.file).toBe('model.onnx.data');
    // The failed verification dropped the stamp, so a plain start now fails too.
    await expectCode(verifyModelFolder(dir, manifest), 'hash_mismatch');
    await expect(stat(path.join(dir, VERIFIED_STAMP_FILE))).rejects.toThrow();
  });

  it('re-verifies when an mtime changes', async () => {
    const { dir, manifest } = await packedAtFixedTime('mtime');
    await verifyModelFolder(dir, manifest);
    await corruptKeepingSizeAndMtime(path.join(dir, 'tokenizer.json'));
    const later = new Date('2024-02-01T00:00:00Z');
    await utimes(path.join(dir, 'tokenizer.json'), later, later);
    await expectCode(verifyModelFolder(dir, manifest), 'hash_mismatch');
  });

  it('re-verifies, and passes, when only an mtime changed, then records the new mtime', async () => {
    const { dir, manifest } = await packedAtFixedTime('touched');
    await verifyModelFolder(dir, manifest);
    const later = new Date('2024-03-01T00:00:00Z');
    await utimes(path.join(dir, 'model.onnx'), later, later);
    await verifyModelFolder(dir, manifest);
    const stamp = JSON.parse(await readFile(path.join(dir, VERIFIED_STAMP_FILE), 'utf8'));
    expect(stamp.files.find((file: { path: string }) => file.path === 'model.onnx').mtimeMs).toBe(later.getTime());
  });

  it('re-verifies for a different manifest even when the files did not change', async () => {
    const { dir, manifest } = await packedAtFixedTime('other-manifest');
    await verifyModelFolder(dir, manifest);
    const wrong = {
      ...manifest,
      files: manifest.files.map((file) => (file.path === 'tokenizer.json' ? { ...file, sha256: '0'.repeat(64) } : file)),
    };
    await expectCode(verifyModelFolder(dir, wrong), 'hash_mismatch');
  });

  it('says size_mismatch for a truncated file', async () => {
    const { dir, manifest } = await packedAtFixedTime('truncated');
    await verifyModelFolder(dir, manifest);
    await truncate(path.join(dir, 'model.onnx.data'), 4);
    const error = await expectCode(verifyModelFolder(dir, manifest), 'size_mismatch');
    expect(error.file).toBe('model.onnx.data');
    expect(error.message).toContain('download');
  });

  it('says hash_mismatch for a changed byte', async () => {
    const { dir, manifest } = await packedAtFixedTime('changed-byte');
    const file = path.join(dir, 'tokenizer_config.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('</s>', '<s/>'));
    expect((await stat(file)).size).toBe(Buffer.byteLength(text));
    const error = await expectCode(verifyModelFolder(dir, manifest), 'hash_mismatch');
    expect(error.file).toBe('tokenizer_config.json');
  });

  it('says file_missing for a missing tokenizer', async () => {
    const { dir, manifest } = await packedAtFixedTime('missing');
    await rm(path.join(dir, 'tokenizer.json'));
    const error = await expectCode(verifyModelFolder(dir, manifest), 'file_missing');
    expect(error.file).toBe('tokenizer.json');
  });
});
