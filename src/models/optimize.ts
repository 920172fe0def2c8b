// `aigw models optimize`'s graph pass: what onnxruntime leaves on the table in published int4 exports.
// MatMulNBits accuracy_level (4 = int8 activations), an fp32 lm_head quantized to MatMulNBits, and a
// tied embedding table replaced by GatherBlockQuantized over the very same quantized bytes.
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { type QuantBits, QUANT_BLOCK_SIZE, quantizeMatrix, quantizeRows } from './block-quantize.js';
import { ModelPackageError } from './errors.js';
import { findExternalDataFiles } from './external-data.js';
import { readManifest, type ModelManifest } from './manifest.js';
import { type ModelProto, type NodeProto, type TensorProto, onnx, readOnnxModel, writeOnnxModel } from './onnx-model-file.js';
import { packModelFolder } from './pack.js';
import { resolvePackagePath } from './package-path.js';
import { pathExists } from './package-files.js';

export interface OptimizeGraphOptions {
  /** MatMulNBits accuracy_level for every quantized matmul: 4 computes with int8 activations. Default 4. */
  accuracyLevel?: number;
  /** Quantize an fp32 lm_head to this many bits; 'keep' leaves it. Default 8. */
  lmHeadBits?: QuantBits | 'keep';
  /** With a tied lm_head quantized: gather embeddings from the same quantized table (drops the fp32 one). Default true. */
  quantizeTiedEmbeddings?: boolean;
}

/** What the pass changed, for the command's report and for tests. */
export interface OptimizeChanges {
  matMulNBits: number;
  accuracyLevel: number;
  lmHead:
    | { action: 'quantized'; bits: QuantBits; tied: boolean; fp32Bytes: number; quantizedBytes: number }
    | { action: 'kept'; reason: string };
  embeddings: { action: 'GatherBlockQuantized'; fp32Bytes: number } | { action: 'kept'; reason: string };
}

export class OptimizeError extends Error {
  override name = 'OptimizeError';
}

const MS = 'com.microsoft';
const { DataType } = onnx.TensorProto;

type Bytes = (tensor: TensorProto) => Promise<Uint8Array>;

type AttributeProto = NonNullable<NodeProto['attribute']>[number];

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name) ?? undefined;
}

function setIntAttr(node: NodeProto, name: string, value: number): void {
  const attributes = (node.attribute ??= []);
  const existing = attributes.findIndex((a) => a.name === name);
  const entry = intAttr(name, value);
  if (existing >= 0) attributes[existing] = entry;
  else attributes.push(entry);
}

function intAttr(name: string, value: number) {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

function float32Of(bytes: Uint8Array): Float32Array {
  const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Rewrites the decoder graph in place. New tensors' bytes go to `added` (by initializer name);
 * the returned changes say what was done and what was kept, and why.
 */
export async function optimizeGraph(
  model: ModelProto,
  tensorBytes: Bytes,
  options: OptimizeGraphOptions,
  added: Map<string, Uint8Array>,
): Promise<OptimizeChanges> {
  const graph = model.graph;
  if (!graph) throw new OptimizeError('the ONNX file has no graph');
  const nodes = graph.node ?? [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const producer = new Map<string, NodeProto>();
  for (const node of nodes) for (const output of node.output ?? []) producer.set(output, node);
  const consumers = (name: string) => nodes.filter((n) => n.input?.includes(name));

  const accuracyLevel = options.accuracyLevel ?? 4;
  let matMulNBits = 0;
  for (const node of nodes) {
    if (node.opType === 'MatMulNBits' && node.domain === MS) {
      setIntAttr(node, 'accuracy_level', accuracyLevel);
      matMulNBits++;
    }
  }

  const changes: OptimizeChanges = {
    matMulNBits,
    accuracyLevel,
    lmHead: { action: 'kept', reason: 'no fp32 MatMul feeds the logits output' },
    embeddings: { action: 'kept', reason: 'the embedding table is not tied to lm_head' },
  };
  const logitsName = graph.output?.find((o) => o.name === 'logits')?.name ?? graph.output?.[0]?.name ?? 'logits';
  const head = findLmHead(logitsName, producer);
  if (!head) return changes;
  if (head.opType === 'MatMulNBits') {
    changes.lmHead = { action: 'kept', reason: 'lm_head is already quantized (MatMulNBits)' };
    return changes;
  }
  const bits = options.lmHeadBits ?? 8;
  if (bits === 'keep') {
    changes.lmHead = { action: 'kept', reason: 'kept fp32 on request' };
    return changes;
  }

  // lm_head's weight: an fp32 [K, N] initializer, or Transpose(embedding [N, K]) when tied.
  const weightName = head.input![1]!;
  const transpose = producer.get(weightName);
  const tiedTable = transpose?.opType === 'Transpose' ? initializers.get(transpose.input![0]!) : undefined;
  const direct = initializers.get(weightName);
  const source = tiedTable ?? direct;
  if (!source || source.dataType !== DataType.FLOAT || source.dims?.length !== 2 || (transpose && !tiedTable)) {
    changes.lmHead = { action: 'kept', reason: 'lm_head weight is not a 2-D fp32 initializer (or its transpose)' };
    return changes;
  }
  const [rows, cols] = source.dims.map(Number) as [number, number];
  const [k, n] = tiedTable ? [cols, rows] : [rows, cols];
  if (k % QUANT_BLOCK_SIZE !== 0) {
    changes.lmHead = { action: 'kept', reason: `hidden size ${k} is not a multiple of the block size ${QUANT_BLOCK_SIZE}` };
    return changes;
  }
  const values = float32Of(await tensorBytes(source));
  const q = tiedTable ? quantizeRows(values, n, k, bits) : quantizeMatrix(values, k, n, bits);
  const blocks = k / QUANT_BLOCK_SIZE;
  const prefix = 'lm_head.aigw_optimized';
  const weight = `${prefix}.weight_Q${bits}`;
  const scales = `${prefix}.weight_scales`;
  // Scales as [N, blocks]: the shape both MatMulNBits and GatherBlockQuantized accept, so one tensor serves both.
  graph.initializer!.push(
    onnx.TensorProto.create({ name: weight, dataType: DataType.UINT8, dims: [n, blocks, (QUANT_BLOCK_SIZE * bits) / 8] }),
    onnx.TensorProto.create({ name: scales, dataType: DataType.FLOAT, dims: [n, blocks] }),
  );
  added.set(weight, q.data);
  added.set(scales, bytesOf(q.scales));
  Object.assign(head, {
    opType: 'MatMulNBits',
    domain: MS,
    input: [head.input![0]!, weight, scales],
    attribute: [intAttr('K', k), intAttr('N', n), intAttr('bits', bits), intAttr('block_size', QUANT_BLOCK_SIZE), intAttr('accuracy_level', accuracyLevel)],
  });
  changes.lmHead = { action: 'quantized', bits, tied: tiedTable !== undefined, fp32Bytes: values.byteLength, quantizedBytes: q.data.byteLength + q.scales.byteLength };

  if (!tiedTable) return removeUnused(graph, changes);
  const tableName = tiedTable.name!;
  const gathers = consumers(tableName).filter((c) => c !== transpose);
  if (options.quantizeTiedEmbeddings === false) {
    changes.embeddings = { action: 'kept', reason: 'kept fp32 on request' };
  } else if (gathers.length === 0 || gathers.some((g) => g.opType !== 'Gather' || g.input![0] !== tableName || Number(attr(g, 'axis')?.i ?? 0) !== 0)) {
    changes.embeddings = { action: 'kept', reason: 'the embedding table has consumers other than Gather on axis 0' };
  } else {
    // GatherBlockQuantized wants the packed bytes as [N, K*bits/8]; a Reshape views the 3-D MatMulNBits tensor so.
    const shape2d = `${prefix}.gather_shape`;
    graph.initializer!.push(onnx.TensorProto.create({ name: shape2d, dataType: DataType.INT64, dims: [2] }));
    added.set(shape2d, bytesOf(BigInt64Array.from([BigInt(n), BigInt((k * bits) / 8)])));
    const table2d = `${prefix}.weight_2d`;
    nodes.unshift(onnx.NodeProto.create({ name: `${prefix}/Reshape`, opType: 'Reshape', input: [weight, shape2d], output: [table2d] }));
    for (const gather of gathers) {
      Object.assign(gather, {
        opType: 'GatherBlockQuantized',
        domain: MS,
        input: [table2d, gather.input![1]!, scales],
        attribute: [intAttr('gather_axis', 0), intAttr('quantize_axis', 1), intAttr('block_size', QUANT_BLOCK_SIZE), intAttr('bits', bits)],
      });
    }
    changes.embeddings = { action: 'GatherBlockQuantized', fp32Bytes: values.byteLength };
  }
  return removeUnused(graph, changes);
}

/** The MatMul or MatMulNBits whose output reaches `output` through shape-preserving ops only. */
function findLmHead(output: string, producer: Map<string, NodeProto>): NodeProto | undefined {
  let node = producer.get(output);
  for (let hops = 0; node && hops < 8; hops++) {
    if (node.opType === 'MatMul' && (node.domain ?? '') === '') return node;
    if (node.opType === 'MatMulNBits' && node.domain === MS) return node;
    if (!['Identity', 'Cast', 'Reshape', 'Squeeze', 'Unsqueeze'].includes(node.opType ?? '')) return undefined;
    node = producer.get(node.input![0]!);
  }
  return undefined;
}

/** Drops nodes whose outputs nobody reads (the old Transpose) and initializers nobody uses. */
function removeUnused(graph: NonNullable<ModelProto['graph']>, changes: OptimizeChanges): OptimizeChanges {
  const outputs = new Set((graph.output ?? []).map((o) => o.name!));
  for (let changed = true; changed; ) {
    changed = false;
    const read = new Set((graph.node ?? []).flatMap((n) => n.input ?? []));
    const kept = (graph.node ?? []).filter((n) => (n.output ?? []).some((o) => read.has(o) || outputs.has(o)));
    if (kept.length !== graph.node!.length) {
      graph.node = kept;
      changed = true;
    }
  }
  const read = new Set((graph.node ?? []).flatMap((n) => n.input ?? []));
  graph.initializer = (graph.initializer ?? []).filter((t) => read.has(t.name!) || outputs.has(t.name!));
  return changes;
}

export interface OptimizePackageOptions extends OptimizeGraphOptions {
  /** Version of the new package; default `<version>-opt`. */
  version?: string;
}

/**
 * Writes an optimized copy of the package in `dir` to `outDir`: the rewritten decoder with one fresh
 * external data file, every other file of the manifest copied, and a new manifest (new version).
 */
export async function optimizeModelPackage(
  dir: string,
  outDir: string,
  options: OptimizePackageOptions = {},
): Promise<{ manifest: ModelManifest; changes: OptimizeChanges }> {
  const original = await readManifest(dir);
  if (await pathExists(outDir)) throw new OptimizeError(`${outDir} already exists; choose another --out or remove it`);
  const onnxPath = resolvePackagePath(dir, original.onnxFile);
  const dataFiles = new Set(await findExternalDataFiles(dir, original.onnxFile));
  const file = await readOnnxModel(onnxPath);
  const added = new Map<string, Uint8Array>();
  const changes = await optimizeGraph(file.model, file.tensorBytes, options, added);

  await mkdir(outDir, { recursive: true });
  try {
    for (const entry of original.files) {
      if (entry.path === original.onnxFile || dataFiles.has(entry.path) || entry.path === 'manifest.json') continue;
      await cp(resolvePackagePath(dir, entry.path), resolvePackagePath(outDir, entry.path));
    }
    const newOnnx = resolvePackagePath(outDir, original.onnxFile);
    await mkdir(path.dirname(newOnnx), { recursive: true });
    const dataName = `${path.basename(newOnnx)}${original.layout === 'genai' ? '.data' : '_data'}`;
    await writeOnnxModel(newOnnx, file.model, dataName, async (tensor) => added.get(tensor.name!) ?? file.tensorBytes(tensor));
    const manifest = await packModelFolder(outDir, {
      name: original.name,
      version: options.version ?? `${original.version}-opt`,
      onnxFile: original.onnxFile,
      contextLength: original.contextLength,
      priceMicrosPerMillion: {
        input: original.price.inputMicrosPerMillionTokens,
        output: original.price.outputMicrosPerMillionTokens,
      },
    });
    return { manifest, changes };
  } catch (error) {
    await rm(outDir, { recursive: true, force: true });
    if (error instanceof ModelPackageError || error instanceof OptimizeError) throw error;
    throw new OptimizeError(`writing the optimized package failed: ${(error as Error).message}`, { cause: error });
  }
}

