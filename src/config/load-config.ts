// Reads aigw.toml, applies AIGW_<SECTION>_<KEY> environment overrides, and validates the result;
// any problem becomes one ConfigError naming each offending key and where its value came from.

import { existsSync, readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { configSchema, CONFIG_DEFAULTS, type AigwConfig } from './config-schema.js';

export const DEFAULT_CONFIG_FILE = 'aigw.toml';
const ENV_PREFIX = 'AIGW_';

export interface ConfigIssue {
  /** Dotted key, e.g. `gateway.port` or `gateway.allowed_origins[1]`. */
  key: string;
  problem: string;
  /** The environment variable that supplied the value, when it was not the file. */
  envVar?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: readonly ConfigIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

type RawTable = Record<string, unknown>;

function isTable(value: unknown): value is RawTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Env values are strings; convert them to the type the key's default has, when they fit it. */
function coerceEnvValue(raw: string, defaultValue: unknown): unknown {
  if (typeof defaultValue === 'number') {
    return /^[+-]?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
  }
  if (typeof defaultValue === 'boolean') {
    const lowered = raw.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(lowered)) return true;
    if (['false', '0', 'no'].includes(lowered)) return false;
    return raw;
  }
  if (Array.isArray(defaultValue)) {
    return raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }
  return raw;
}

/**
 * Merges AIGW_<SECTION>_<KEY> variables into the parsed file. Variables whose middle part is not
 * a section (AIGW_CONFIG, say) are left alone; an unknown key in a known section is an error.
 */
function applyEnvOverrides(
  raw: RawTable,
  env: NodeJS.ProcessEnv,
): { issues: ConfigIssue[]; envVars: Map<string, string> } {
  const issues: ConfigIssue[] = [];
  const envVars = new Map<string, string>();
  const defaults = CONFIG_DEFAULTS as unknown as Record<string, RawTable>;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith(ENV_PREFIX)) continue;
    // Only tables of keys take overrides ([[models]] is a list: write it in the file).
    const section = Object.keys(defaults).find(
      (s) => isTable(defaults[s]) && name.startsWith(`${ENV_PREFIX}${s.toUpperCase()}_`),
    );
    if (section === undefined) continue;
    const key = name.slice(ENV_PREFIX.length + section.length + 1).toLowerCase();
    if (!(key in defaults[section]!)) {
      issues.push({ key: `${section}.${key}`, problem: 'unknown key', envVar: name });
      continue;
    }
    const table = raw[section] ?? (raw[section] = {});
    if (!isTable(table)) continue;
    table[key] = coerceEnvValue(value, defaults[section]![key]);
    envVars.set(`${section}.${key}`, name);
  }
  return { issues, envVars };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
    .join('');
}

function issuesOf(error: z.ZodError, envVars: Map<string, string>): ConfigIssue[] {
  return error.issues.flatMap((issue): ConfigIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      const problem = issue.path.length === 0 ? 'unknown section' : 'unknown key';
      return issue.keys.map((k) => ({ key: formatPath([...issue.path, k]), problem }));
    }
    const key = formatPath(issue.path);
    const topKey = formatPath(issue.path.slice(0, 2));
    const envVar = envVars.get(topKey);
    return [{ key, problem: issue.message, ...(envVar ? { envVar } : {}) }];
  });
}

function describeIssue(issue: ConfigIssue): string {
  return `${issue.key}: ${issue.problem}${issue.envVar ? ` (from ${issue.envVar})` : ''}`;
}

/** Validates TOML text plus env overrides; `source` names the file in messages. */
export function parseConfig(
  tomlText: string,
  env: NodeJS.ProcessEnv = {},
  source = DEFAULT_CONFIG_FILE,
): AigwConfig {
  let raw: RawTable;
  try {
    raw = parse(tomlText) as RawTable;
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      throw new ConfigError(
        `${source}: invalid TOML at line ${error.line}, column ${error.column}: ${reason}`,
        [],
        { cause: error },
      );
    }
    throw error;
  }

  const { issues, envVars } = applyEnvOverrides(raw, env);
  if (raw.model !== undefined && raw.models !== undefined) {
    const envVar = [...envVars].find(([key]) => key.startsWith('model.'))?.[1];
    issues.push({
      key: 'model',
      problem: '[model] and [[models]] are both set: move the [model] table into a [[models]] entry (same keys) and remove [model]',
      ...(envVar ? { envVar } : {}),
    });
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) issues.push(...issuesOf(result.error, envVars));
  if (issues.length > 0 || !result.success) {
    const details = issues.map(describeIssue).join('; ');
    throw new ConfigError(`invalid configuration (${source}): ${details}`, issues);
  }
  return result.data;
}

/**
 * Loads the configuration. With no path, `aigw.toml` in the working directory is used when it
 * exists and defaults otherwise; a path given explicitly must exist.
 */
export function loadConfig(path?: string, env: NodeJS.ProcessEnv = process.env): AigwConfig {
  const file = path ?? DEFAULT_CONFIG_FILE;
  if (path === undefined && !existsSync(file)) return parseConfig('', env, '(defaults)');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const reason = missing ? 'file not found' : (error as Error).message;
    throw new ConfigError(`${file}: ${reason}`, [], { cause: error });
  }
  return parseConfig(text, env, file);
}
