// `aigw models optimize` end to end: rewrite the package's graph (src/models/optimize.ts), then load
// both versions and keep the new one only if its greedy tokens agree with the original's well enough.
import { rm } from 'node:fs/promises';
import { optimizeModelPackage, type ModelManifest, type OptimizeChanges, type OptimizePackageOptions } from '../models/index.js';
import { compareModels, type ComparisonOptions, type ModelComparison } from './model-comparison.js';
import { loadModel } from './model.js';

/**
 * The stated bar: at least 95 % of greedy positions (teacher-forced, fixed prompt set) pick the same
 * token as the original. onnxruntime issue 29849 shows accuracy_level 4 can flip tokens on some models.
 */
export const DEFAULT_MIN_AGREEMENT = 0.95;

export interface OptimizeModelOptions extends OptimizePackageOptions, ComparisonOptions {
  /** Refuse (delete the new package) below this top-1 agreement. Default DEFAULT_MIN_AGREEMENT. */
  minAgreement?: number;
  /** Keep the new package below the bar, with a warning. */
  force?: boolean;
  threads?: number;
}

export interface OptimizeModelResult {
  manifest: ModelManifest;
  changes: OptimizeChanges;
  comparison: ModelComparison;
  /** Set when the package was kept below the bar because of `force`. */
  warning?: string;
}

export class OptimizationRefusedError extends Error {
  override name = 'OptimizationRefusedError';
  constructor(
    message: string,
    readonly comparison: ModelComparison,
  ) {
    super(message);
  }
}

export async function optimizeModel(dir: string, outDir: string, options: OptimizeModelOptions = {}): Promise<OptimizeModelResult> {
  const { manifest, changes } = await optimizeModelPackage(dir, outDir, options);
  const minAgreement = options.minAgreement ?? DEFAULT_MIN_AGREEMENT;
  let comparison: ModelComparison;
  try {
    const original = await loadModel(dir, { threads: options.threads });
    const optimized = await loadModel(outDir, { threads: options.threads });
    comparison = await compareModels(original, optimized, options);
  } catch (error) {
    await rm(outDir, { recursive: true, force: true });
    throw error;
  }
  if (comparison.top1Agreement >= minAgreement) return { manifest, changes, comparison };
  const shortfall =
    `greedy agreement ${(comparison.top1Agreement * 100).toFixed(1)} % is below the ${(minAgreement * 100).toFixed(1)} % bar ` +
    `(${comparison.positions} positions over ${comparison.prompts} prompts, worst relative logit error ${comparison.maxRelativeLogitError.toFixed(3)})`;
  if (options.force) return { manifest, changes, comparison, warning: `${shortfall}; kept because of --force` };
  await rm(outDir, { recursive: true, force: true });
  throw new OptimizationRefusedError(`${shortfall}; nothing written. Try --lm-head int8, --accuracy-level 0, or --force`, comparison);
}
