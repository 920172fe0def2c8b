import path from 'node:path';
import { CONFIG_DEFAULTS, type AigwConfig } from '../config/index.js';
import { buildModelPackage, PackageExistsError } from '../../tools/model-builder/index.js';
import { presetShape } from '../../tools/model-builder/presets.js';

/** Where the demo model lives unless [model] path says otherwise. */
export const DEMO_MODEL_PATH = CONFIG_DEFAULTS.model.path;

/** The seeded tiny model with random weights, built on first start instead of shipped as a blob. */
export async function ensureDemoModel(config: AigwConfig, dir = config.model.path, format = config.model.format): Promise<void> {
  const precision = config.performance.precision;
  try {
    await buildModelPackage({
      outDir: path.resolve(dir),
      layout: format === 'genai' ? 'genai' : 'optimum',
      precision: precision === 'fp32' ? 'fp32' : precision === 'int8' || precision === 'q8' ? 'int8' : 'int4',
      shape: presetShape('tiny'),
      seed: 42,
      name: 'aigw-tiny',
      version: '1',
    });
  } catch (error) {
    // Another process built it at the same moment: theirs is as good as ours.
    if (!(error instanceof PackageExistsError)) throw error;
  }
}
