import path from 'node:path';

/**
 * True for a package-relative POSIX path that stays inside the package: manifests may come
 * from S3, so a path like `../../etc/passwd` must never be resolved.
 */
export function isSafeRelativePath(relative: string): boolean {
  if (relative.length === 0 || relative.includes('\\') || relative.includes('\0')) return false;
  if (path.posix.isAbsolute(relative)) return false;
  return relative.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** The absolute path of a package-relative file; the caller has checked it with isSafeRelativePath. */
export function resolvePackagePath(dir: string, relative: string): string {
  return path.join(dir, ...relative.split('/'));
}

/** The package-relative POSIX path of an absolute path, or undefined when it lies outside the package. */
export function toPackagePath(dir: string, absolute: string): string | undefined {
  const relative = path.relative(path.resolve(dir), path.resolve(absolute)).split(path.sep).join('/');
  return isSafeRelativePath(relative) ? relative : undefined;
}
