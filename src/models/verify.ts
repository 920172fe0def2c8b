import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError } from './errors.js';
import { HASH_CONCURRENCY, mapWithConcurrency, sha256File } from './file-hash.js';
import { manifestSha256, parseManifest, type ModelManifest } from './manifest.js';
import { resolvePackagePath } from './package-path.js';

/** Written after a full verification; while it matches, later starts skip hashing. */
export const VERIFIED_STAMP_FILE = '.aigw-verified';

export interface VerifyOptions {
  /** Hash every file even when the stamp matches. */
  force?: boolean;
}

interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

interface VerifiedStamp {
  manifestSha256: string;
  files: FileStamp[];
}

/**
 * Checks every manifest file's size and SHA-256, once per download: a stamp records the
 * manifest hash and each file's size and mtime, and while they all still match the hashing
 * is skipped. Throws ModelPackageError (file_missing, size_mismatch, hash_mismatch).
 */
export async function verifyModelFolder(dir: string, manifest: ModelManifest, opts: VerifyOptions = {}): Promise<void> {
  const valid = parseManifest(manifest);
  const digest = manifestSha256(valid);
  const current = await statManifestFiles(dir, valid);
  const stampFile = path.join(dir, VERIFIED_STAMP_FILE);
  if (!opts.force && stampMatches(await readStamp(stampFile), digest, current)) return;

  // A failed verification must not leave an older stamp that a later start would trust.
  await rm(stampFile, { force: true });
  await mapWithConcurrency(valid.files, HASH_CONCURRENCY, async (file) => {
    const { sha256 } = await sha256File(resolvePackagePath(dir, file.path));
    if (sha256 !== file.sha256) {
      throw new ModelPackageError(
        'hash_mismatch',
        `${file.path} in ${dir} has SHA-256 ${sha256}, the manifest says ${file.sha256}; the file is corrupt or changed, download the model package again`,
        { file: file.path },
      );
    }
  });
  await writeStamp(stampFile, { manifestSha256: digest, files: current });
}

async function statManifestFiles(dir: string, manifest: ModelManifest): Promise<FileStamp[]> {
  return Promise.all(
    manifest.files.map(async (file): Promise<FileStamp> => {
      let info;
      try {
        info = await stat(resolvePackagePath(dir, file.path));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        throw new ModelPackageError(
          'file_missing',
          `${file.path} listed in the manifest is missing from ${dir}; download the model package again`,
          { file: file.path, cause: error },
        );
      }
      if (info.size !== file.size) {
        throw new ModelPackageError(
          'size_mismatch',
          `${file.path} in ${dir} is ${info.size} bytes, the manifest says ${file.size}; the download is incomplete or the file changed, download the model package again`,
          { file: file.path },
        );
      }
      return { path: file.path, size: info.size, mtimeMs: info.mtimeMs };
    }),
  );
}

function stampMatches(stamp: VerifiedStamp | undefined, digest: string, current: FileStamp[]): boolean {
  if (!stamp || stamp.manifestSha256 !== digest || stamp.files.length !== current.length) return false;
  const recorded = new Map(stamp.files.map((file) => [file.path, file]));
  return current.every((file) => {
    const before = recorded.get(file.path);
    return before !== undefined && before.size === file.size && before.mtimeMs === file.mtimeMs;
  });
}

async function readStamp(stampFile: string): Promise<VerifiedStamp | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(stampFile, 'utf8'));
    return isStamp(value) ? value : undefined;
  } catch {
    // Missing or unreadable stamp: verify in full, which rewrites it.
    return undefined;
  }
}

function isStamp(value: unknown): value is VerifiedStamp {
  if (typeof value !== 'object' || value === null) return false;
  const { manifestSha256: digest, files } = value as Partial<VerifiedStamp>;
  return (
    typeof digest === 'string' &&
    Array.isArray(files) &&
    files.every(
      (file) =>
        typeof file === 'object' &&
        file !== null &&
        typeof file.path === 'string' &&
        typeof file.size === 'number' &&
        typeof file.mtimeMs === 'number',
    )
  );
}

async function writeStamp(stampFile: string, stamp: VerifiedStamp): Promise<void> {
  const temporary = `${stampFile}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(stamp)}\n`);
    await rename(temporary, stampFile);
  } catch (error) {
    // A read-only package folder stays usable; it is just verified again on the next start.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return;
    throw error;
  }
}
