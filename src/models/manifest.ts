import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ModelPackageError } from './errors.js';
import { isSafeRelativePath } from './package-path.js';

export const MANIFEST_FILE = 'manifest.json';

const relativePath = z.string().refine(isSafeRelativePath, {
  message: 'must be a relative path inside the package (POSIX separators, no "..")',
});
const microsPerMillion = z.number().int().nonnegative();

export const manifestFileSchema = z.object({
  path: relativePath,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
});

export const modelManifestSchema = z
  .object({
    schemaVersion: z.literal(1),
    name: z.string().min(1),
    version: z.string().min(1),
    layout: z.enum(['optimum', 'genai']),
    onnxFile: relativePath,
    precision: z.string().min(1).optional(),
    contextLength: z.number().int().positive(),
    eosTokenIds: z.array(z.number().int().nonnegative()).min(1),
    bosTokenId: z.number().int().nonnegative().optional(),
    // Integer micro-dollars per million tokens: money is never a float.
    price: z.object({
      inputMicrosPerMillionTokens: microsPerMillion,
      outputMicrosPerMillionTokens: microsPerMillion,
    }),
    files: z.array(manifestFileSchema).min(1),
  })
  .superRefine((manifest, ctx) => {
    const paths = new Set<string>();
    for (const [index, file] of manifest.files.entries()) {
      if (paths.has(file.path)) {
        ctx.addIssue({ code: 'custom', path: ['files', index, 'path'], message: `duplicate file "${file.path}"` });
      }
      paths.add(file.path);
    }
    if (!paths.has(manifest.onnxFile)) {
      ctx.addIssue({ code: 'custom', path: ['onnxFile'], message: `"${manifest.onnxFile}" is not listed in files` });
    }
  });

export type ModelManifest = z.infer<typeof modelManifestSchema>;
export type ManifestFile = z.infer<typeof manifestFileSchema>;

/** Validates a parsed manifest; `source` names where it came from in the error message. */
export function parseManifest(value: unknown, source = MANIFEST_FILE): ModelManifest {
  const result = modelManifestSchema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
  throw new ModelPackageError(
    'manifest_invalid',
    `${source} is not a valid aigw model manifest (${issues}); re-create it with \`aigw models pack <folder>\``,
    { file: MANIFEST_FILE },
  );
}

/** Reads and validates `<dir>/manifest.json`. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelPackageError(
        'manifest_missing',
        `${file} not found; turn the folder into a model package with \`aigw models pack ${dir}\``,
        { file: MANIFEST_FILE, cause: error },
      );
    }
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelPackageError(
      'manifest_invalid',
      `${file} is not valid JSON (${(error as Error).message}); re-create it with \`aigw models pack ${dir}\``,
      { file: MANIFEST_FILE, cause: error },
    );
  }
  return parseManifest(value, file);
}

/** Writes `<dir>/manifest.json` atomically, so a reader never sees half a manifest. */
export async function writeManifest(dir: string, manifest: ModelManifest): Promise<void> {
  const valid = parseManifest(manifest);
  const file = path.join(dir, MANIFEST_FILE);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(valid, null, 2)}\n`);
  await rename(temporary, file);
}

/** SHA-256 of the manifest's canonical JSON (keys sorted), independent of key order on disk. */
export function manifestSha256(manifest: ModelManifest): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
