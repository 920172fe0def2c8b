// Reading and writing ONNX model files whose large tensors live in external data files, with
// onnx-proto (no Python): what `aigw models optimize` rewrites and the model builder writes.
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelPackageError } from './errors.js';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type NodeProto = onnxProto.onnx.INodeProto;

const EXTERNAL_ALIGNMENT = 64;
/** Initializers at or above this many bytes go to the external data file. */
export const EXTERNAL_THRESHOLD_BYTES = 1024;

export class OnnxFileError extends Error {
  override name = 'OnnxFileError';
}

/** Appends tensor bytes to one external data file at 64-byte aligned offsets. */
export class ExternalDataWriter {
  private fd: number | undefined;
  private offset = 0;

  /** `location` is the file name as recorded in the model (relative to the model file's folder). */
  constructor(
    private readonly file: string,
    readonly location: string,
  ) {
    this.fd = openSync(file, 'w');
  }

  append(bytes: Uint8Array): { offset: number; length: number } {
    if (this.fd === undefined) throw new OnnxFileError(`external data file ${this.file} is already closed`);
    const aligned = Math.ceil(this.offset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    if (aligned > this.offset) writeSync(this.fd, new Uint8Array(aligned - this.offset));
    let written = 0;
    while (written < bytes.byteLength) written += writeSync(this.fd, bytes, written, bytes.byteLength - written);
    this.offset = aligned + bytes.byteLength;
    return { offset: aligned, length: bytes.byteLength };
  }

  get size(): number {
    return this.offset;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** An ONNX model decoded from disk; tensor bytes are read on demand from wherever they live. */
export interface OnnxModelFile {
  readonly model: ModelProto;
  tensorBytes(tensor: TensorProto): Promise<Uint8Array>;
}

export async function readOnnxModel(onnxPath: string): Promise<OnnxModelFile> {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(await readFile(onnxPath));
  } catch (error) {
    throw new ModelPackageError('onnx_missing', `${onnxPath} is not a readable ONNX model (${(error as Error).message})`, {
      file: path.basename(onnxPath),
      cause: error,
    });
  }
  const dir = path.dirname(onnxPath);
  return {
    model,
    async tensorBytes(tensor) {
      if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) {
        const typed = [tensor.floatData, tensor.int32Data, tensor.int64Data, tensor.doubleData, tensor.uint64Data];
        if (typed.some((values) => values && values.length > 0)) {
          throw new OnnxFileError(`tensor ${tensor.name} keeps its values in typed fields; only raw_data tensors are rewritten`);
        }
        return tensor.rawData ?? new Uint8Array(0);
      }
      const entry = (key: string) => tensor.externalData?.find((e) => e.key === key)?.value;
      const location = entry('location');
      if (!location) throw new OnnxFileError(`external tensor ${tensor.name} names no location`);
      const handle = await open(path.resolve(dir, location), 'r');
      try {
        const offset = Number(entry('offset') ?? 0);
        const length = entry('length') === undefined ? (await handle.stat()).size - offset : Number(entry('length'));
        const bytes = new Uint8Array(length);
        let read = 0;
        while (read < length) {
          const { bytesRead } = await handle.read(bytes, read, length - read, offset + read);
          if (bytesRead === 0) throw new OnnxFileError(`external data of ${tensor.name} in ${location} is truncated`);
          read += bytesRead;
        }
        return bytes;
      } finally {
        await handle.close();
      }
    },
  };
}

/**
 * Writes `model` to onnxPath with every large initializer in one fresh external data file named
 * `dataName` beside it. `bytesOf` gives each initializer's bytes (its old file, or new values).
 */
export async function writeOnnxModel(
  onnxPath: string,
  model: ModelProto,
  dataName: string,
  bytesOf: (tensor: TensorProto) => Promise<Uint8Array>,
): Promise<void> {
  const external = new ExternalDataWriter(path.join(path.dirname(onnxPath), dataName), dataName);
  try {
    const initializers = model.graph?.initializer ?? [];
    for (let i = 0; i < initializers.length; i++) {
      const tensor = initializers[i]!;
      const bytes = await bytesOf(tensor);
      initializers[i] = onnx.TensorProto.create({ ...tensor, ...storedAs(bytes, external) });
    }
  } finally {
    external.close();
  }
  await writeFile(onnxPath, onnx.ModelProto.encode(model).finish());
}

/** The data fields of a tensor holding `bytes`: external at or above the threshold, else inline. */
export function storedAs(bytes: Uint8Array, external: ExternalDataWriter | undefined): Partial<TensorProto> {
  if (external && bytes.byteLength >= EXTERNAL_THRESHOLD_BYTES) {
    const { offset, length } = external.append(bytes);
    return {
      rawData: new Uint8Array(0),
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: external.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    };
  }
  return { rawData: bytes.slice(), dataLocation: onnx.TensorProto.DataLocation.DEFAULT, externalData: [] };
}
