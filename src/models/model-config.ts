import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError } from './errors.js';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

type Json = Record<string, unknown>;

/** A JSON object file of the package; undefined when absent and not required. */
export async function readConfigJson(dir: string, file: string, required: true): Promise<Json>;
export async function readConfigJson(dir: string, file: string, required: false): Promise<Json | undefined>;
export async function readConfigJson(dir: string, file: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, file), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (!required) return undefined;
    throw new ModelPackageError('config_missing', `${file} not found in ${dir}; download it with the model`, {
      file,
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelPackageError('config_missing', `${file} in ${dir} is not valid JSON; download it again`, {
      file,
      cause: error,
    });
  }
  if (!isObject(value)) {
    throw new ModelPackageError('config_missing', `${file} in ${dir} is not a JSON object; download it again`, { file });
  }
  return value;
}

/** Token ids from an `eos_token_id`-style field: a number, an array of numbers, or absent. */
export function tokenIds(value: unknown): number[] {
  const values = Array.isArray(value) ? value : [value];
  return values.filter((id): id is number => Number.isInteger(id) && (id as number) >= 0);
}

/** A positive integer field, or undefined. */
export function positiveInteger(value: unknown): number | undefined {
  return Number.isInteger(value) && (value as number) > 0 ? (value as number) : undefined;
}

/** `object[key]` when it is a JSON object. */
export function child(object: Json | undefined, key: string): Json | undefined {
  const value = object?.[key];
  return isObject(value) ? value : undefined;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
