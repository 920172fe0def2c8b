// How functions/*.ts become Lambda code: esbuild on this machine (never Docker), one ESM file
// per function; onnxruntime-node stays out of the bundle because the layer provides it.
import { OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';

/** Packages the onnxruntime layer provides at /opt/nodejs/node_modules. */
export const LAYER_PROVIDED_MODULES = ['onnxruntime-node', 'onnxruntime-common'];

// Bundled CommonJS dependencies may still call require() for Node built-ins; ESM has none.
const REQUIRE_SHIM =
  "import { createRequire as __aigwCreateRequire } from 'node:module'; const require = __aigwCreateRequire(import.meta.url);";

export function functionBundling(kind: 'gateway' | 'model'): BundlingOptions {
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
  };
}
