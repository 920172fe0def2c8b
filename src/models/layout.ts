import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError } from './errors.js';

export type ModelLayout = 'optimum' | 'genai';

export const GENAI_CONFIG_FILE = 'genai_config.json';
export const CONFIG_FILE = 'config.json';
export const OPTIMUM_ONNX_DIR = 'onnx';

/**
 * Default choice among an Optimum export's ONNX files, by transformers.js dtype name.
 * Ordered for CPU inference on Lambda: 4-bit MatMulNBits is smallest and fast on CPU, 8-bit
 * next, fp32 is exact but large, fp16 variants last because the CPU provider runs them via casts.
 */
export const PRECISION_PREFERENCE: readonly string[] = ['q4', 'q8', 'int8', 'uint8', 'fp32', 'bnb4', 'q4f16', 'fp16'];

export interface OnnxCandidate {
  /** Package-relative POSIX path, e.g. `onnx/model_q4.onnx`. */
  path: string;
  /** transformers.js dtype name: `model.onnx` is fp32, `model_quantized.onnx` is q8, else the suffix. */
  precision: string;
}

// Decoder exports only: single-file `model*.onnx` and older Optimum `decoder_model_merged*.onnx`.
const DECODER_ONNX = /^(model|decoder_model_merged)(?:_([A-Za-z0-9]+))?\.onnx$/;

/** genai_config.json means onnxruntime-genai; config.json with onnx/*.onnx means Optimum. */
export async function detectLayout(dir: string): Promise<ModelLayout> {
  if (await isFile(path.join(dir, GENAI_CONFIG_FILE))) return 'genai';
  const hasConfig = await isFile(path.join(dir, CONFIG_FILE));
  const onnxFiles = await listOnnxFiles(dir);
  if (hasConfig && onnxFiles.length > 0) return 'optimum';
  if (hasConfig) {
    throw new ModelPackageError(
      'onnx_missing',
      `${dir} has ${CONFIG_FILE} but no ${OPTIMUM_ONNX_DIR}/*.onnx; download the repository's onnx/ folder too (an ONNX export, not PyTorch weights)`,
      { file: OPTIMUM_ONNX_DIR },
    );
  }
  throw new ModelPackageError(
    'unknown_layout',
    `${dir} is not a model folder aigw knows: expected ${GENAI_CONFIG_FILE} (onnxruntime-genai export) or ${CONFIG_FILE} with ${OPTIMUM_ONNX_DIR}/*.onnx (Hugging Face Optimum / transformers.js export)`,
  );
}

/** The decoder ONNX files of an Optimum export with their precisions. */
export async function listOptimumOnnxCandidates(dir: string): Promise<OnnxCandidate[]> {
  const candidates: OnnxCandidate[] = [];
  for (const name of await listOnnxFiles(dir)) {
    const precision = precisionOfOnnxName(name);
    if (precision !== undefined) candidates.push({ path: `${OPTIMUM_ONNX_DIR}/${name}`, precision });
  }
  return candidates;
}

/** The dtype name encoded in an Optimum ONNX file name, or undefined when it is not a decoder. */
export function precisionOfOnnxName(fileName: string): string | undefined {
  const match = DECODER_ONNX.exec(fileName);
  if (!match) return undefined;
  const suffix = match[2];
  if (suffix === undefined) return 'fp32';
  return suffix === 'quantized' ? 'q8' : suffix;
}

/**
 * Picks a candidate: `preferPrecision` first when present, then PRECISION_PREFERENCE, then any
 * other precision alphabetically; `model*` wins over `decoder_model_merged*` at equal precision.
 */
export function chooseOnnxCandidate(candidates: readonly OnnxCandidate[], preferPrecision?: string): OnnxCandidate {
  const order = preferPrecision ? [preferPrecision, ...PRECISION_PREFERENCE] : [...PRECISION_PREFERENCE];
  const rank = (candidate: OnnxCandidate): number => {
    const index = order.indexOf(candidate.precision);
    return index === -1 ? order.length : index;
  };
  const sorted = [...candidates].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      Number(path.posix.basename(a.path).startsWith('decoder_')) - Number(path.posix.basename(b.path).startsWith('decoder_')) ||
      a.path.localeCompare(b.path),
  );
  const chosen = sorted[0];
  if (!chosen) {
    throw new ModelPackageError(
      'onnx_missing',
      `no decoder ONNX (model*.onnx or decoder_model_merged*.onnx) in ${OPTIMUM_ONNX_DIR}/; name the file with --onnx`,
      { file: OPTIMUM_ONNX_DIR },
    );
  }
  return chosen;
}

async function listOnnxFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(path.join(dir, OPTIMUM_ONNX_DIR), { withFileTypes: true });
    return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.onnx')).map((entry) => entry.name).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

export async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
