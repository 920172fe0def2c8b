import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { buildOnnxruntimeLayer } from '../layers/build-onnxruntime-layer.js';
import type { LambdaArchitecture } from './deploy-config.js';

export function lambdaArchitecture(architecture: LambdaArchitecture): Architecture {
  return architecture === 'arm64' ? Architecture.ARM_64 : Architecture.X86_64;
}

/**
 * The onnxruntime-node layer for one architecture, built from the installed npm package at synth
 * time (layers/build-onnxruntime-layer.ts), so the binary always matches package-lock.json.
 */
export function onnxruntimeLayer(scope: Construct, id: string, architecture: LambdaArchitecture): LayerVersion {
  const build = buildOnnxruntimeLayer({ architecture });
  return new LayerVersion(scope, id, {
    code: Code.fromAsset(build.outDir),
    compatibleArchitectures: [lambdaArchitecture(architecture)],
    compatibleRuntimes: [Runtime.NODEJS_22_X],
    description: `onnxruntime-node ${build.onnxruntimeVersion} (linux ${architecture}, CPU only)`,
  });
}
