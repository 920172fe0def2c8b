import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildOnnxruntimeLayer,
  nodeArch,
  type LayerArchitecture,
  type LayerBuildResult,
} from '../../layers/build-onnxruntime-layer.js';
import { scratchDir } from '../helpers/scratch-dir.js';

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(root, path));
    }
  };
  walk(root);
  return out.sort();
}

const architectures: LayerArchitecture[] = ['arm64', 'x86_64'];
const builds = new Map<LayerArchitecture, LayerBuildResult>();

beforeAll(() => {
  // Temporary folders: the layer must work without the repository's node_modules above it.
  const root = scratchDir('aigw-layer-');
  for (const architecture of architectures) {
    builds.set(architecture, buildOnnxruntimeLayer({ architecture, outDir: join(root, architecture) }));
  }
});

describe.each(architectures)('onnxruntime layer for %s', (architecture) => {
  const modules = () => join(builds.get(architecture)!.outDir, 'nodejs', 'node_modules');

  it('holds onnxruntime-node and onnxruntime-common under nodejs/node_modules', () => {
    expect(readdirSync(modules()).sort()).toEqual(['onnxruntime-common', 'onnxruntime-node']);
    const version = JSON.parse(readFileSync(join(modules(), 'onnxruntime-node', 'package.json'), 'utf8')).version;
    expect(builds.get(architecture)!.onnxruntimeVersion).toBe(version);
  });

  it('ships only the Linux CPU binary of its own architecture', () => {
    const native = listFiles(join(modules(), 'onnxruntime-node', 'bin'));
    const arch = nodeArch(architecture);
    expect(native).toEqual([`napi-v6/linux/${arch}/libonnxruntime.so.1`, `napi-v6/linux/${arch}/onnxruntime_binding.node`]);
  });

  it('leaves out everything not needed at runtime', () => {
    const files = listFiles(modules());
    expect(files.filter((file) => /\.(d\.ts|map|ts)$/.test(file))).toEqual([]);
    expect(files.filter((file) => /(darwin|win32|cuda|tensorrt|dml|\.dll|\.dylib)/i.test(file))).toEqual([]);
    expect(files.filter((file) => /[\\/](script|lib)[\\/]/.test(file))).toEqual([]);
  });

  it('is far smaller than the whole npm package', () => {
    const bytes = listFiles(modules()).reduce((sum, file) => sum + statSync(join(modules(), file)).size, 0);
    expect(bytes).toBeLessThan(60 * 1024 * 1024);
  });
});

describe('a rebuild', () => {
  it('reuses an identical build in place', () => {
    const first = builds.get('arm64')!;
    const again = buildOnnxruntimeLayer({ architecture: 'arm64', outDir: first.outDir });
    expect(again.built).toBe(false);
    expect(first.built).toBe(true);
  });
});

/** An ONNX model computing y = x + x over float[2]. */
function addModel(): Uint8Array {
  const { onnx } = onnxProto;
  const tensorType = { elemType: 1, shape: { dim: [{ dimValue: 2 }] } };
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'add',
      node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }],
      input: [{ name: 'x', type: { tensorType } }],
      output: [{ name: 'y', type: { tensorType } }],
    },
  }).finish();
}

describe('the layer of this machine architecture', () => {
  const hostArchitecture: LayerArchitecture | undefined =
    process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'x86_64' : undefined;

  it.runIf(process.platform === 'linux' && hostArchitecture)('runs a model the way Lambda loads it (NODE_PATH=/opt/nodejs/node_modules)', () => {
    const layerModules = join(builds.get(hostArchitecture!)!.outDir, 'nodejs', 'node_modules');
    const work = scratchDir('aigw-layer-task-');
    writeFileSync(join(work, 'add.onnx'), addModel());
    writeFileSync(
      join(work, 'index.cjs'),
      [
        "const ort = require('onnxruntime-node');",
        "if (!require.resolve('onnxruntime-node').startsWith(process.env.NODE_PATH)) throw new Error('not from the layer');",
        '(async () => {',
        "  const session = await ort.InferenceSession.create(require('path').join(__dirname, 'add.onnx'));",
        "  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1.5, -2]), [2]) });",
        '  process.stdout.write(JSON.stringify(Array.from(out.y.data)));',
        '})().catch((e) => { console.error(e); process.exit(1); });',
      ].join('\n'),
    );
    const stdout = execFileSync(process.execPath, [join(work, 'index.cjs')], {
      cwd: work,
      env: { PATH: process.env.PATH, NODE_PATH: layerModules },
      encoding: 'utf8',
    });
    expect(JSON.parse(stdout)).toEqual([3, -4]);
  });
});
