// Small helpers over onnx-proto (protobufjs) to build ONNX protos and write a model whose large
// initializers live in one external data file, as real exports of multi-GB models do.
import { writeFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';
import { type ExternalDataWriter, storedAs } from '../../src/models/onnx-model-file.js';

export const { onnx } = onnxProto;
export type TensorProto = Onnx.ITensorProto;
export type NodeProto = Onnx.INodeProto;
export type ValueInfoProto = Onnx.IValueInfoProto;
export type GraphProto = Onnx.IGraphProto;
export type AttributeProto = Onnx.IAttributeProto;
export type OperatorSetId = Onnx.IOperatorSetIdProto;

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** ONNX IR version matching opset 17 (ONNX 1.12). */
export const IR_VERSION = 8;
export { EXTERNAL_THRESHOLD_BYTES, ExternalDataWriter } from '../../src/models/onnx-model-file.js';

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * A TensorProto holding `data` (little-endian raw bytes). With an external writer, data of
 * EXTERNAL_THRESHOLD_BYTES or more is written there and referenced by location/offset/length.
 */
export function tensorProto(
  name: string,
  dataType: DataTypeId,
  dims: readonly number[],
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array,
  external?: ExternalDataWriter,
): TensorProto {
  const bytes = bytesOf(data);
  // storedAs copies inline bytes: protobufjs keeps a reference, and callers may reuse their buffers.
  return { name, dataType, dims: [...dims], ...storedAs(bytes, external) };
}

export function attrInt(name: string, value: number): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

export function attrInts(name: string, values: readonly number[]): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...values] };
}

export function attrFloat(name: string, value: number): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value };
}

export function nodeProto(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: readonly AttributeProto[] = [],
  domain = '',
  name = '',
): NodeProto {
  return { opType, input: [...inputs], output: [...outputs], attribute: [...attributes], domain, name };
}

/** A tensor ValueInfoProto; string dims are symbolic (dim_param), numbers fixed (dim_value). */
export function valueInfo(name: string, elemType: DataTypeId, dims: readonly (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export const OPSET_ONNX: OperatorSetId = { domain: '', version: 17 };
export const OPSET_MICROSOFT: OperatorSetId = { domain: 'com.microsoft', version: 1 };

export async function writeModel(
  path: string,
  graph: GraphProto,
  opsetImports: readonly OperatorSetId[] = [OPSET_ONNX, OPSET_MICROSOFT],
): Promise<void> {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'aigw-model-builder',
    producerVersion: '1',
    opsetImport: [...opsetImports],
    graph,
  });
  await writeFile(path, onnx.ModelProto.encode(model).finish());
}
