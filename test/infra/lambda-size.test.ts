import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Template } from 'aws-cdk-lib/assertions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RegionalStack } from '../../infra/regional-stack.js';
import { functionProperties, MODEL_PRICING, repositoryRoot, synthAigw, type SynthesizedApp } from './synth-app.js';

/** Lambda's limit on a function's code plus all its layers, unzipped. */
const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

const realEntries = {
  gateway: join(repositoryRoot, 'functions', 'gateway.ts'),
  model: join(repositoryRoot, 'functions', 'model.ts'),
};

function directoryBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return sum + (stat.isDirectory() ? directoryBytes(path) : stat.size);
  }, 0);
}

/** The staged asset folder behind an S3Key of `<hash>.zip` in the synthesized output. */
function assetDir(synth: SynthesizedApp, s3Key: unknown): string {
  const hash = String(s3Key).replace(/\.zip$/, '');
  const dir = join(synth.outdir, `asset.${hash}`);
  if (!existsSync(dir)) throw new Error(`no staged asset ${dir}`);
  return dir;
}

function deployedBytes(synth: SynthesizedApp, template: Template, fn: IFunction) {
  const properties = functionProperties(template, fn);
  const code = directoryBytes(assetDir(synth, properties.Code.S3Key));
  const layerVersions = template.findResources('AWS::Lambda::LayerVersion');
  const layers = ((properties.Layers ?? []) as { Ref: string }[]).map((ref) =>
    directoryBytes(assetDir(synth, (layerVersions[ref.Ref]!.Properties as { Content: { S3Key: string } }).Content.S3Key)),
  );
  return { code, layers, total: code + layers.reduce((sum, bytes) => sum + bytes, 0) };
}

// The real entry points, bundled by the same NodejsFunction settings `cdk synth` uses, and the
// real layers of both architectures.
let synth: SynthesizedApp;
let stack: RegionalStack;
let template: Template;

beforeAll(() => {
  for (const entry of Object.values(realEntries)) {
    if (!existsSync(entry)) throw new Error(`${entry} does not exist yet: the size limit can't be measured without it`);
  }
  synth = synthAigw(
    {
      regions: ['eu-west-1'],
      models: [
        { name: 'arm', version: '1', architecture: 'arm64', ...MODEL_PRICING },
        { name: 'x86', version: '1', architecture: 'x86_64', ...MODEL_PRICING },
      ],
    },
    realEntries,
  );
  stack = synth.stacks.regional[0]!;
  template = synth.template(stack);
});

describe('deployment size', () => {
  it.each(['arm@1', 'x86@1'])('model function %s: code plus the onnxruntime layer stay under 250 MB unzipped', (key) => {
    const size = deployedBytes(synth, template, stack.modelFunctions.get(key)!.fn);
    expect(size.layers).toHaveLength(1);
    expect(size.layers[0]!).toBeGreaterThan(10 * 1024 * 1024); // the native library is really in there
    expect(size.total).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
  });

  it('gateway function: code alone, no layer, under 250 MB unzipped', () => {
    const size = deployedBytes(synth, template, stack.gateway);
    expect(size.layers).toEqual([]);
    expect(size.code).toBeGreaterThan(0);
    expect(size.total).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
  });

  it('the model bundle imports onnxruntime-node from the layer instead of bundling it', () => {
    const properties = functionProperties(template, stack.modelFunctions.get('arm@1')!.fn);
    const bundle = readFileSync(join(assetDir(synth, properties.Code.S3Key), 'index.mjs'), 'utf8');
    expect(bundle).toMatch(/from\s*"onnxruntime-node"|require\("onnxruntime-node"\)|import\("onnxruntime-node"\)/);
    expect(bundle).not.toContain('onnxruntime_binding.node');
  });
});
