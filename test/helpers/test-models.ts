// Builds the seeded test model packages once per builder version, cached under
// node_modules/.cache/aigw-models/<key>/, safe when several vitest workers ask at the same time.
import { createHash } from 'node:crypto';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExportIoVariant, ModelLayout, ModelPrecision } from '../../tools/model-builder/llama-ops.js';
import { PackageExistsError, buildModelPackage } from '../../tools/model-builder/package-writer.js';
import { presetShape } from '../../tools/model-builder/presets.js';

export const TEST_MODEL_SEED = 42;

export interface TestModelOptions {
  layout: ModelLayout;
  precision: ModelPrecision;
  preset?: 'tiny';
  lastTokenLogitsOnly?: boolean;
  /** An export variant's graph input/output types (see the builder's ExportIoVariant). */
  io?: ExportIoVariant;
  /** genai only: genai_config's search.past_present_share_buffer (default true). */
  sharedKvBuffer?: boolean;
  /** genai only: the attention op (default GroupQueryAttention). */
  attention?: 'GroupQueryAttention' | 'MultiHeadAttention';
  /** false keeps lm_head fp32 in a quantized model, as published int4 exports often do. */
  quantizeLmHead?: boolean;
  /** lm_head = the embedding table transposed (Qwen2.5-0.5B style). */
  tieWordEmbeddings?: boolean;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'aigw-models');
// Sources whose change changes the package bytes: the cache key carries their hash.
const SOURCE_DIRS = ['tools/model-builder', 'src/models'];

// Packages of other builder versions (and crashed builds' temp folders) are removed once this old.
const STALE_AFTER_MS = 60 * 60 * 1000;

let sourceHash: Promise<string> | undefined;
const builds = new Map<string, Promise<string>>();

async function hashSources(): Promise<string> {
  const hash = createHash('sha256');
  for (const dir of SOURCE_DIRS) {
    const files = (await readdir(path.join(ROOT, dir))).filter((f) => f.endsWith('.ts')).sort();
    for (const file of files) {
      hash.update(`${dir}/${file}\0`);
      hash.update(await readFile(path.join(ROOT, dir, file)));
    }
  }
  return hash.digest('hex').slice(0, 12);
}

/** Frees the disk of packages no current run can use; a run still using one would be over an hour old. */
async function pruneStale(currentHash: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(CACHE_DIR);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.endsWith(`-${currentHash}`)) continue;
    const dir = path.join(CACHE_DIR, entry);
    try {
      if (Date.now() - (await stat(dir)).mtimeMs > STALE_AFTER_MS) await rm(dir, { recursive: true, force: true });
    } catch {
      // Removed by a concurrent worker.
    }
  }
}

async function isBuilt(dir: string): Promise<boolean> {
  try {
    return (await stat(path.join(dir, 'manifest.json'))).isFile();
  } catch {
    return false;
  }
}

async function build(key: string, opts: TestModelOptions): Promise<string> {
  const dir = path.join(CACHE_DIR, key);
  if (await isBuilt(dir)) return dir;
  try {
    await buildModelPackage({
      outDir: dir,
      layout: opts.layout,
      precision: opts.precision,
      shape: { ...presetShape(opts.preset ?? 'tiny'), ...(opts.tieWordEmbeddings ? { tieWordEmbeddings: true } : {}) },
      seed: TEST_MODEL_SEED,
      name: `test-${opts.preset ?? 'tiny'}-${opts.layout}-${opts.precision}`,
      version: '1',
      lastTokenLogitsOnly: opts.lastTokenLogitsOnly ?? true,
      io: opts.io,
      sharedKvBuffer: opts.sharedKvBuffer,
      quantizeLmHead: opts.quantizeLmHead,
      attention: opts.attention,
    });
  } catch (error) {
    // Another worker finished first between our check and our build.
    if (!(error instanceof PackageExistsError)) throw error;
  }
  return dir;
}

/** The folder of a built test model package (built on first use). */
export async function ensureTestModel(opts: TestModelOptions): Promise<string> {
  if (!sourceHash) {
    sourceHash = hashSources();
    sourceHash.then(pruneStale).catch(() => undefined);
  }
  const last = opts.lastTokenLogitsOnly ?? true;
  const variant = [
    ...Object.entries(opts.io ?? {}).sort().map(([k, v]) => `${k}_${String(v)}`),
    ...(opts.sharedKvBuffer === false ? ['growing'] : []),
    ...(opts.attention === 'MultiHeadAttention' ? ['mha'] : []),
    ...(opts.quantizeLmHead === false ? ['fp32head'] : []),
    ...(opts.tieWordEmbeddings ? ['tied'] : []),
  ];
  const key = [opts.preset ?? 'tiny', opts.layout, opts.precision, last ? 'last' : 'all', ...variant, `s${TEST_MODEL_SEED}`, await sourceHash].join('-');
  let pending = builds.get(key);
  if (!pending) {
    pending = build(key, opts);
    builds.set(key, pending);
    pending.catch(() => builds.delete(key));
  }
  return pending;
}
