// The models `aigw serve` runs: the [[models]] list, or the one legacy [model] table as a list of one.
import type { AigwConfig, ModelEntryConfig } from './config-schema.js';

/** Every configured model entry, in file order (the order decides a bare name's default version). */
export function configuredModels(config: AigwConfig): ModelEntryConfig[] {
  if (config.models !== undefined) return config.models;
  const { name, path, format, max_tokens, max_concurrent_requests } = config.model;
  return [{ name, path, format, max_tokens, max_concurrent_requests }];
}
