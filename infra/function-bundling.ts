// How functions/*.ts become Lambda code: esbuild on this machine (never Docker), one ESM file
// per function; onnxruntime-node stays out of the bundle because the layer provides it.
import { posix } from 'node:path';
import { OutputFormat, type BundlingOptions, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';

/** Packages the onnxruntime layer provides at /opt/nodejs/node_modules. */
export const LAYER_PROVIDED_MODULES = ['onnxruntime-node', 'onnxruntime-common'];

// Bundled CommonJS dependencies may still call require() for Node built-ins; ESM has none.
const REQUIRE_SHIM =
  "import { createRequire as __aigwCreateRequire } from 'node:module'; const require = __aigwCreateRequire(import.meta.url);";

/** A file copied into a function's code bundle (a guardrail word list). */
export interface BundledFile {
  /** Absolute path on this machine. */
  readonly source: string;
  /** Path under the code root (Lambda's LAMBDA_TASK_ROOT), "/"-separated. */
  readonly bundledPath: string;
}

/** One argument for bash, which runs the hooks of local bundling: single-quoted, quotes escaped. */
function shellQuote(argument: string): string {
  return `'${argument.replaceAll("'", `'\\''`)}'`;
}

/**
 * Copies the files into the bundle after esbuild. The asset's hash is the hash of the bundle
 * output (AssetHashType.OUTPUT), so a file's content is part of it: an edited list redeploys.
 */
function copyIntoBundle(files: readonly BundledFile[]): ICommandHooks {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (_inputDir, outputDir) =>
      files.flatMap((file) => {
        const target = posix.join(outputDir, file.bundledPath);
        return [`mkdir -p ${shellQuote(posix.dirname(target))}`, `cp ${shellQuote(file.source)} ${shellQuote(target)}`];
      }),
  };
}

export function functionBundling(kind: 'gateway' | 'model', files: readonly BundledFile[] = []): BundlingOptions {
  for (const file of files) {
    const normal = posix.normalize(file.bundledPath);
    if (posix.isAbsolute(normal) || normal.startsWith('../') || normal !== file.bundledPath) {
      throw new RangeError(`bundled file path ${JSON.stringify(file.bundledPath)} must be a plain path inside the code root`);
    }
  }
  return {
    forceDockerBundling: false,
    format: OutputFormat.ESM,
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: REQUIRE_SHIM,
    // The SDK is bundled rather than taken from the runtime: versions then match package-lock.json.
    bundleAwsSDK: true,
    // The gateway has no layer: if its code ever pulled in onnxruntime, bundling must fail loudly
    // rather than ship an import that breaks at cold start, so nothing is external for it.
    externalModules: kind === 'model' ? LAYER_PROVIDED_MODULES : [],
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    ...(files.length > 0 ? { commandHooks: copyIntoBundle(files) } : {}),
  };
}
