// Builds the onnxruntime-node Lambda layer for one architecture from the installed npm package:
// only linux/<arch> native files and the runtime JavaScript, nothing for other platforms or GPUs.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type LayerArchitecture = 'arm64' | 'x86_64';

export class LayerBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerBuildError';
  }
}

/** Node's `process.arch` name for a Lambda architecture (the package's bin/ folder names). */
export function nodeArch(architecture: LayerArchitecture): 'arm64' | 'x64' {
  return architecture === 'arm64' ? 'arm64' : 'x64';
}

export interface LayerBuildOptions {
  readonly architecture: LayerArchitecture;
  /** The layer root; the packages land in `<outDir>/nodejs/node_modules/`. */
  readonly outDir?: string;
  /** Folder to resolve the installed packages from (defaults to this repository). */
  readonly resolveFrom?: string;
}

export interface LayerBuildResult {
  readonly outDir: string;
  readonly onnxruntimeVersion: string;
  readonly architecture: LayerArchitecture;
  /** Whether files were copied (false when an identical build was already in place). */
  readonly built: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const STAMP_FILE = 'aigw-layer.json';
// Bumped when the selection rules below change, so stale layer folders get rebuilt.
const LAYER_FORMAT = 2;

export function defaultLayerDir(architecture: LayerArchitecture): string {
  return join(here, 'onnxruntime', 'build', architecture);
}

function packageRoot(name: string, resolveFrom: string): string {
  const require = createRequire(join(resolveFrom, 'package.json'));
  let entry: string;
  try {
    // The entry point, not package.json: onnxruntime-common's exports map doesn't expose the latter.
    entry = require.resolve(name);
  } catch {
    throw new LayerBuildError(`${name} is not installed under ${resolveFrom}; run npm install`);
  }
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) {
      return dir;
    }
  }
  throw new LayerBuildError(`no package.json of ${name} above ${entry}`);
}

// Nested package.json files matter at runtime: they set "type" (module or commonjs) per folder.
const isRuntimeFile = (path: string) => /\.(c|m)?js$/.test(path) || basename(path) === 'package.json';

/** Copies the files of `from` that `keep` accepts (paths relative to `from`), preserving layout. */
function copyTree(from: string, to: string, keep: (relativePath: string) => boolean): void {
  cpSync(from, to, {
    recursive: true,
    filter: (source) => {
      if (statSync(source).isDirectory()) return true;
      return keep(relative(from, source));
    },
  });
}

/**
 * The native files onnxruntime-node loads on Linux: its N-API binding and libonnxruntime.so.
 * Execution-provider plugins (CUDA, TensorRT, and the shared provider bridge only they use) are
 * left out: Lambda has no GPU.
 */
function isLinuxCpuNative(fileName: string): boolean {
  return fileName === 'onnxruntime_binding.node' || /^libonnxruntime\.so(\.\d+)*$/.test(fileName);
}

function copyOnnxruntimeNode(root: string, to: string, architecture: LayerArchitecture): void {
  cpSync(join(root, 'package.json'), join(to, 'package.json'));
  copyTree(join(root, 'dist'), join(to, 'dist'), isRuntimeFile);
  const bin = join(root, 'bin');
  const napiDirs = existsSync(bin) ? readdirSync(bin).filter((name) => name.startsWith('napi-v')) : [];
  let nativeFiles = 0;
  for (const napi of napiDirs) {
    const source = join(bin, napi, 'linux', nodeArch(architecture));
    if (!existsSync(source)) continue;
    const target = join(to, 'bin', napi, 'linux', nodeArch(architecture));
    mkdirSync(target, { recursive: true });
    for (const file of readdirSync(source).filter(isLinuxCpuNative)) {
      cpSync(join(source, file), join(target, file));
      nativeFiles += 1;
    }
  }
  if (nativeFiles === 0) {
    throw new LayerBuildError(`onnxruntime-node ships no linux/${nodeArch(architecture)} binary under ${bin}`);
  }
}

function copyOnnxruntimeCommon(root: string, to: string): void {
  cpSync(join(root, 'package.json'), join(to, 'package.json'));
  // Both module flavours: onnxruntime-node require()s the CommonJS build, ESM code imports the other.
  copyTree(join(root, 'dist'), join(to, 'dist'), (path) => /^(cjs|esm)[\\/]/.test(path) && isRuntimeFile(path));
}

function readStamp(outDir: string): unknown {
  try {
    return JSON.parse(readFileSync(join(outDir, STAMP_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Assembles `<outDir>/nodejs/node_modules/{onnxruntime-node,onnxruntime-common}`. Builds into a
 * temporary sibling folder and renames it into place, so a concurrent or interrupted build never
 * leaves a half-filled layer; an existing build of the same version and architecture is reused.
 */
export function buildOnnxruntimeLayer(options: LayerBuildOptions): LayerBuildResult {
  const { architecture } = options;
  const outDir = resolve(options.outDir ?? defaultLayerDir(architecture));
  const resolveFrom = options.resolveFrom ?? resolve(here, '..');
  const nodeRoot = packageRoot('onnxruntime-node', resolveFrom);
  const onnxruntimeVersion = (JSON.parse(readFileSync(join(nodeRoot, 'package.json'), 'utf8')) as { version: string })
    .version;
  const commonRoot = packageRoot('onnxruntime-common', nodeRoot);
  const stamp = { format: LAYER_FORMAT, onnxruntimeVersion, architecture };

  if (JSON.stringify(readStamp(outDir)) === JSON.stringify(stamp)) {
    return { outDir, onnxruntimeVersion, architecture, built: false };
  }

  const staging = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    const modules = join(staging, 'nodejs', 'node_modules');
    copyOnnxruntimeNode(nodeRoot, join(modules, 'onnxruntime-node'), architecture);
    copyOnnxruntimeCommon(commonRoot, join(modules, 'onnxruntime-common'));
    writeFileSync(join(staging, STAMP_FILE), `${JSON.stringify(stamp)}\n`);
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    try {
      renameSync(staging, outDir);
    } catch (error) {
      // Another process renamed its identical build into place first: use that one.
      if (JSON.stringify(readStamp(outDir)) !== JSON.stringify(stamp)) throw error;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return { outDir, onnxruntimeVersion, architecture, built: true };
}

function parseArgs(argv: readonly string[]): LayerBuildOptions {
  let architecture: string | undefined;
  let outDir: string | undefined;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index];
    if (arg === '--arch') architecture = argv[++index];
    else if (arg === '--out') outDir = argv[++index];
    else throw new LayerBuildError(`unknown argument ${arg}; usage: build-onnxruntime-layer --arch arm64|x86_64 [--out dir]`);
  }
  if (architecture !== 'arm64' && architecture !== 'x86_64') {
    throw new LayerBuildError('--arch must be arm64 or x86_64');
  }
  return { architecture, outDir };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const result = buildOnnxruntimeLayer(parseArgs(process.argv.slice(2)));
    console.log(
      `onnxruntime-node ${result.onnxruntimeVersion} layer for ${result.architecture}: ${result.outDir}` +
        (result.built ? '' : ' (up to date)'),
    );
  } catch (error) {
    console.error(error instanceof LayerBuildError ? error.message : error);
    process.exitCode = 1;
  }
}
