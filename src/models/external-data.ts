import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelPackageError } from './errors.js';
import { toPackagePath } from './package-path.js';

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.IGraphProto;
type Tensor = onnxProto.onnx.ITensorProto;
type Node = onnxProto.onnx.INodeProto;

/**
 * ONNX files up to this size are decoded to read their external-data locations exactly.
 * A graph whose weights live outside is a few MB; a bigger file carries its weights inline,
 * and decoding it would only cost memory.
 */
export const ONNX_DECODE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Package-relative paths of the external-data files an ONNX file needs, sorted.
 * Small files are decoded (exact); large ones fall back to the usual names next to the file:
 * `<onnx>_data`, `<onnx>.data` and `<onnx>_data_*`.
 */
export async function findExternalDataFiles(dir: string, onnxPath: string): Promise<string[]> {
  const onnxFile = path.join(dir, onnxPath);
  const { size } = await stat(onnxFile);
  const locations =
    size <= ONNX_DECODE_LIMIT_BYTES ? decodeExternalLocations(await readFile(onnxFile), onnxPath) : undefined;
  const onnxDir = path.dirname(onnxFile);
  const files = locations ?? (await conventionalDataFiles(onnxDir, path.basename(onnxFile)));
  const relative = files.map((location) => {
    const inside = toPackagePath(dir, path.resolve(onnxDir, location));
    if (inside === undefined) {
      throw new ModelPackageError(
        'file_missing',
        `${onnxPath} points to external data "${location}" outside the package folder; copy it next to the ONNX file and re-export`,
        { file: onnxPath },
      );
    }
    return inside;
  });
  return [...new Set(relative)].sort();
}

/** Locations named by EXTERNAL tensors anywhere in the model (initializers, constants, subgraphs, functions). */
function decodeExternalLocations(bytes: Uint8Array, onnxPath: string): string[] {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new ModelPackageError(
      'onnx_missing',
      `${onnxPath} is not a readable ONNX model (${(error as Error).message}); download it again`,
      { file: onnxPath, cause: error },
    );
  }
  const locations = new Set<string>();
  const visitTensor = (tensor: Tensor | null | undefined): void => {
    if (!tensor || tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return;
    const location = tensor.externalData?.find((entry) => entry.key === 'location')?.value;
    if (location) locations.add(location);
  };
  const visitNodes = (nodes: Node[] | null | undefined): void => {
    for (const node of nodes ?? []) {
      for (const attribute of node.attribute ?? []) {
        visitTensor(attribute.t);
        attribute.tensors?.forEach(visitTensor);
        if (attribute.g) visitGraph(attribute.g);
        attribute.graphs?.forEach(visitGraph);
      }
    }
  };
  const visitGraph = (graph: Graph): void => {
    graph.initializer?.forEach(visitTensor);
    for (const sparse of graph.sparseInitializer ?? []) {
      visitTensor(sparse.values);
      visitTensor(sparse.indices);
    }
    visitNodes(graph.node);
  };
  if (model.graph) visitGraph(model.graph);
  for (const fn of model.functions ?? []) visitNodes(fn.node);
  return [...locations];
}

async function conventionalDataFiles(onnxDir: string, onnxName: string): Promise<string[]> {
  const names = await readdir(onnxDir);
  return names.filter(
    (name) => name === `${onnxName}_data` || name === `${onnxName}.data` || name.startsWith(`${onnxName}_data_`),
  );
}
