// The physical floor of a decode step: the bytes a token must read (weights once, the KV cache so far)
// divided by the memory bandwidth measured in the same run with the same thread count.
import ort from 'onnxruntime-node';
import { readManifest } from '../src/models/index.js';
import { type TensorProto, onnx, readOnnxModel } from '../src/models/onnx-model-file.js';

const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2, 16: 2 };

function tensorBytes(t: TensorProto): number {
  return (t.dims ?? []).reduce((n: number, d) => n * Number(d), 1) * (ELEMENT_BYTES[t.dataType ?? 1] ?? 4);
}

/**
 * Bytes read per decoded token: every matmul weight (MatMul, MatMulNBits: B, scales, zero points;
 * a Transpose'd tied table counts as read once), one row of each gathered table, and the KV cache
 * at `contextTokens` positions.
 */
export async function bytesPerToken(modelDir: string, contextTokens: number): Promise<number> {
  const manifest = await readManifest(modelDir);
  const { model } = await readOnnxModel(`${modelDir}/${manifest.onnxFile}`);
  const graph = model.graph!;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const producer = new Map((graph.node ?? []).flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  let bytes = 0;
  for (const node of graph.node ?? []) {
    const inputs = node.input ?? [];
    if (node.opType === 'MatMul' || node.opType === 'MatMulNBits' || node.opType === 'Gemm') {
      for (const name of inputs.slice(1)) {
        const direct = initializers.get(name);
        const transposed = producer.get(name)?.opType === 'Transpose' ? initializers.get(producer.get(name)!.input![0]!) : undefined;
        const weight = direct ?? transposed;
        if (weight) bytes += tensorBytes(weight);
      }
    } else if (node.opType === 'Gather' || node.opType === 'GatherBlockQuantized') {
      const table = initializers.get(inputs[0]!) ?? initializers.get(producer.get(inputs[0]!)?.input?.[0] ?? '');
      const rows = Number(table?.dims?.[0] ?? 1);
      if (table && rows > 1) bytes += tensorBytes(table) / rows;
    }
  }
  const kv = graph.input!.filter((i) => i.name!.startsWith('past_key_values.'));
  for (const input of kv) {
    const dims = input.type!.tensorType!.shape!.dim!;
    const elem = ELEMENT_BYTES[input.type!.tensorType!.elemType ?? 1] ?? 4;
    bytes += Number(dims[1]!.dimValue) * Number(dims[3]!.dimValue) * contextTokens * elem;
  }
  return bytes;
}

/**
 * Memory bandwidth as onnxruntime's own fp32 GEMV sees it: x[1, 4096] @ W[4096, 16384] (256 MB, far
 * beyond any cache) with W fed as an input, best of several runs, on `threads` intra-op threads.
 */
export async function measureBandwidth(threads: number): Promise<number> {
  const k = 4096;
  const n = 16384;
  const { DataType } = onnx.TensorProto;
  const graph = {
    name: 'bandwidth',
    node: [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
    input: [
      { name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: k }] } } } },
      { name: 'w', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: k }, { dimValue: n }] } } } },
    ],
    output: [{ name: 'y', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: n }] } } } }],
  };
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph })).finish();
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const w = new Float32Array(k * n).fill(0.5);
  const feeds = { x: new ort.Tensor('float32', new Float32Array(k).fill(1), [1, k]), w: new ort.Tensor('float32', w, [k, n]) };
  let best = Infinity;
  for (let i = 0; i < 8; i++) {
    const start = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - start);
  }
  await session.release();
  return (w.byteLength / best) * 1000;
}
