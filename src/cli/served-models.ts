// What `aigw serve` serves: every [[models]] entry (or the one [model]) as a backend, local
// packages loaded into onnxruntime here, upstreams called over HTTP with their key from the env.
import path from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { engineBackend } from '../backends/engine-backend.js';
import type { ModelBackend } from '../backends/model-backend.js';
import { configuredModels, type AigwConfig, type ModelEntryConfig } from '../config/index.js';
import { loadModel } from '../engine/index.js';
import { ModelRegistry, upstreamApiKey, upstreamModelBackend } from '../routing/index.js';
import { DEMO_MODEL_PATH, ensureDemoModel } from './demo-model.js';
import { pathExists } from '../models/package-files.js';

export interface ServedModels {
  registry: ModelRegistry;
  /** Per-version caps on requests in flight ([[models]] max_concurrent_requests), by `name@version`. */
  caps: Map<string, number>;
}

export async function loadServedModels(config: AigwConfig, say: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<ServedModels> {
  const entries = configuredModels(config);
  // Only built when an entry names a secret: locally the SDK's default credentials and region.
  const secrets = entries.some((e) => e.api_key_secret !== undefined) ? new SecretsManagerClient({ maxAttempts: 2 }) : undefined;
  const backends: ModelBackend[] = [];
  try {
    for (const entry of entries) {
      backends.push(entry.path !== undefined ? await localBackend(config, entry, say) : upstreamModelBackend(entry, await upstreamApiKey(entry, { env, secrets })));
    }
  } finally {
    secrets?.destroy();
  }
  return {
    registry: new ModelRegistry(backends),
    caps: new Map(entries.map((entry, i) => [backends[i]!.version, entry.max_concurrent_requests])),
  };
}

async function localBackend(config: AigwConfig, entry: ModelEntryConfig, say: (line: string) => void): Promise<ModelBackend> {
  const where = entry.path!;
  const dir = path.resolve(where);
  if (!(await pathExists(path.join(dir, 'manifest.json')))) {
    if (path.resolve(DEMO_MODEL_PATH) !== dir) {
      throw new Error(`no model package at ${where} (model ${entry.name}): build one with \`aigw models pack <folder>\``);
    }
    say('building the demo model (random weights, a few seconds) ...');
    await ensureDemoModel(config, where, entry.format);
  }
  const model = await loadModel(dir, { threads: config.performance.threads || undefined });
  if (entry.format !== 'auto' && entry.format !== model.manifest.layout) {
    throw new Error(`model ${entry.name}: format is "${entry.format}" but the package at ${where} is "${model.manifest.layout}"`);
  }
  if (entry.version !== undefined && entry.version !== model.manifest.version) {
    throw new Error(`model ${entry.name}: version is "${entry.version}" but the package at ${where} is version "${model.manifest.version}"`);
  }
  const price =
    entry.input_usd_per_million_tokens !== undefined || entry.output_usd_per_million_tokens !== undefined
      ? {
          inputMicrosPerMillionTokens: entry.input_usd_per_million_tokens ?? model.manifest.price.inputMicrosPerMillionTokens,
          outputMicrosPerMillionTokens: entry.output_usd_per_million_tokens ?? model.manifest.price.outputMicrosPerMillionTokens,
        }
      : undefined;
  return engineBackend(model, entry.name, {
    version: `${entry.name}@${model.manifest.version}`,
    defaultMaxTokens: entry.max_tokens ?? config.model.max_tokens,
    batchSize: config.performance.batch_size,
    price,
  });
}

