// Small file helpers the package writers share (the builder, GGUF import, optimize, pull).
import { stat, writeFile } from 'node:fs/promises';

/** True when the path exists; false when it does not (ENOENT, or a file where a folder should be); other errors are thrown. */
export async function pathExists(target: string): Promise<boolean> {
  try {
    await stat(target);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw error;
  }
}

/** Writes `value` as pretty JSON with a final newline, as the package's JSON files are. */
export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}
