import path from 'node:path';
import { ModelPackageError } from './errors.js';
import { findExternalDataFiles } from './external-data.js';
import { HASH_CONCURRENCY, mapWithConcurrency, sha256File } from './file-hash.js';
import {
  CONFIG_FILE,
  GENAI_CONFIG_FILE,
  OPTIMUM_ONNX_DIR,
  chooseOnnxCandidate,
  detectLayout,
  isFile,
  listOptimumOnnxCandidates,
  precisionOfOnnxName,
  type ModelLayout,
} from './layout.js';
import { writeManifest, type ManifestFile, type ModelManifest } from './manifest.js';
import { GENERATION_CONFIG_FILE, child, positiveInteger, readConfigJson, tokenIds } from './model-config.js';
import { isSafeRelativePath, resolvePackagePath } from './package-path.js';

export interface PackOptions {
  /** Defaults to the folder's name. */
  name?: string;
  /** Defaults to "1". */
  version?: string;
  /** Package-relative ONNX path; for Optimum a bare name is looked up under onnx/ too. */
  onnxFile?: string;
  /** transformers.js dtype name (q4, q8, int8, uint8, fp32, fp16, q4f16, bnb4) tried first; Optimum only. */
  preferPrecision?: string;
  /** Integer micro-dollars per million tokens; defaults to 0/0. */
  priceMicrosPerMillion?: { input: number; output: number };
  /** Overrides the context length read from the config. */
  contextLength?: number;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];
// Read by the engine when present: special tokens, generation defaults, a chat template kept out of tokenizer_config.
const OPTIONAL_FILES = [GENERATION_CONFIG_FILE, 'special_tokens_map.json', 'chat_template.jinja'];

interface ModelSource {
  onnxFile: string;
  precision?: string;
  contextLength?: number;
  eosTokenIds: number[];
  bosTokenId?: number;
  configFiles: string[];
}

/**
 * Turns a downloaded model folder into an aigw model package: detects the layout, chooses the
 * ONNX decoder, reads context length and special tokens, hashes every needed file, and writes
 * manifest.json next to them.
 */
export async function packModelFolder(dir: string, opts: PackOptions = {}): Promise<ModelManifest> {
  const layout = await detectLayout(dir);
  const source = layout === 'genai' ? await readGenaiSource(dir, opts) : await readOptimumSource(dir, opts);
  const contextLength = opts.contextLength ?? source.contextLength;
  if (contextLength === undefined) {
    throw new ModelPackageError(
      'config_missing',
      `${source.configFiles[0]} in ${dir} names no context length; pass contextLength (--context-length)`,
      { file: source.configFiles[0] },
    );
  }
  if (source.eosTokenIds.length === 0) {
    throw new ModelPackageError(
      'config_missing',
      `no eos_token_id in ${source.configFiles.join(' or ')} of ${dir}; the model could never stop, add eos_token_id to the config`,
      { file: source.configFiles[0] },
    );
  }

  const required = [
    source.onnxFile,
    ...(await findExternalDataFiles(dir, source.onnxFile)),
    ...TOKENIZER_FILES,
    source.configFiles[0],
  ];
  for (const file of required) {
    if (!(await isFile(resolvePackagePath(dir, file)))) {
      throw new ModelPackageError('file_missing', `${file} not found in ${dir}; download it with the model`, { file });
    }
  }
  const optional: string[] = [];
  for (const file of [...source.configFiles.slice(1), ...OPTIONAL_FILES]) {
    if (await isFile(resolvePackagePath(dir, file))) optional.push(file);
  }

  const paths = [...new Set([...required, ...optional])].sort();
  const files = await mapWithConcurrency(paths, HASH_CONCURRENCY, async (file): Promise<ManifestFile> => {
    const { sha256, size } = await sha256File(resolvePackagePath(dir, file));
    return { path: file, size, sha256 };
  });

  const price = opts.priceMicrosPerMillion ?? { input: 0, output: 0 };
  const manifest: ModelManifest = {
    schemaVersion: 1,
    name: opts.name ?? path.basename(path.resolve(dir)),
    version: opts.version ?? '1',
    layout,
    onnxFile: source.onnxFile,
    ...(source.precision === undefined ? {} : { precision: source.precision }),
    contextLength,
    eosTokenIds: source.eosTokenIds,
    ...(source.bosTokenId === undefined ? {} : { bosTokenId: source.bosTokenId }),
    price: { inputMicrosPerMillionTokens: price.input, outputMicrosPerMillionTokens: price.output },
    files,
  };
  await writeManifest(dir, manifest);
  return manifest;
}

async function readGenaiSource(dir: string, opts: PackOptions): Promise<ModelSource> {
  const genai = await readConfigJson(dir, GENAI_CONFIG_FILE, true);
  const model = child(genai, 'model');
  const decoderFile = child(model, 'decoder')?.filename;
  const onnxFile = await resolveOnnxFile(dir, 'genai', opts.onnxFile ?? (typeof decoderFile === 'string' ? decoderFile : 'model.onnx'));
  const generation = await readConfigJson(dir, GENERATION_CONFIG_FILE, false);
  const bos = tokenIds(model?.bos_token_id ?? generation?.bos_token_id)[0];
  return {
    onnxFile,
    contextLength: positiveInteger(model?.context_length),
    // generation_config.json may list more end-of-turn ids (Llama 3's two) than genai_config does.
    eosTokenIds: unique([...tokenIds(model?.eos_token_id), ...tokenIds(generation?.eos_token_id)]),
    bosTokenId: bos,
    configFiles: [GENAI_CONFIG_FILE, CONFIG_FILE],
  };
}

async function readOptimumSource(dir: string, opts: PackOptions): Promise<ModelSource> {
  const config = await readConfigJson(dir, CONFIG_FILE, true);
  const generation = await readConfigJson(dir, GENERATION_CONFIG_FILE, false);
  let onnxFile: string;
  let precision: string | undefined;
  if (opts.onnxFile !== undefined) {
    onnxFile = await resolveOnnxFile(dir, 'optimum', opts.onnxFile);
    precision = precisionOfOnnxName(path.posix.basename(onnxFile));
  } else {
    ({ path: onnxFile, precision } = chooseOnnxCandidate(await listOptimumOnnxCandidates(dir), opts.preferPrecision));
  }
  // Multimodal configs keep the text decoder's settings under text_config.
  const text = child(config, 'text_config');
  const contextLength =
    positiveInteger(config.max_position_embeddings) ??
    positiveInteger(text?.max_position_embeddings) ??
    positiveInteger(config.n_positions);
  // generation_config.json is what transformers stops on; config.json may list fewer ids.
  const eosTokenIds = unique([
    ...tokenIds(generation?.eos_token_id),
    ...tokenIds(config.eos_token_id),
    ...tokenIds(text?.eos_token_id),
  ]);
  const bos = tokenIds(generation?.bos_token_id ?? config.bos_token_id)[0];
  return { onnxFile, precision, contextLength, eosTokenIds, bosTokenId: bos, configFiles: [CONFIG_FILE] };
}

async function resolveOnnxFile(dir: string, layout: ModelLayout, requested: string): Promise<string> {
  const relative = requested.split(path.sep).join('/');
  const tries = layout === 'optimum' && !relative.includes('/') ? [relative, `${OPTIMUM_ONNX_DIR}/${relative}`] : [relative];
  for (const candidate of tries) {
    if (isSafeRelativePath(candidate) && (await isFile(resolvePackagePath(dir, candidate)))) return candidate;
  }
  throw new ModelPackageError(
    'onnx_missing',
    `ONNX file "${requested}" not found in ${dir}; give a path relative to the folder, e.g. ${layout === 'genai' ? 'model.onnx' : 'onnx/model_q4.onnx'}`,
    { file: requested },
  );
}

function unique(ids: number[]): number[] {
  return [...new Set(ids)];
}
