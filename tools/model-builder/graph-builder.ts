// A GraphProto under construction: nodes with generated names, constant and weight initializers
// (large ones streamed to the external data file as they are added, then dropped from memory).
import {
  type AttributeProto,
  DataType,
  type DataTypeId,
  type ExternalDataWriter,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
  nodeProto,
  tensorProto,
} from './onnx-writer.js';

export interface OpOptions {
  attrs?: readonly AttributeProto[];
  domain?: string;
  /** Output names; by default one fresh name. A number asks for that many fresh names. */
  outputs?: readonly string[] | number;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private counter = 0;
  private scopeName = '';

  constructor(
    readonly name: string,
    private readonly external?: ExternalDataWriter,
  ) {}

  /** Prefix for generated names, e.g. "layers.3/attn", so the graph reads like a real export. */
  scope<T>(name: string, build: () => T): T {
    const previous = this.scopeName;
    this.scopeName = previous ? `${previous}/${name}` : name;
    try {
      return build();
    } finally {
      this.scopeName = previous;
    }
  }

  fresh(hint: string): string {
    this.counter += 1;
    return `/${this.scopeName ? `${this.scopeName}/` : ''}${hint}_${this.counter}`;
  }

  /** Adds a node; returns its output names. */
  op(opType: string, inputs: readonly string[], options: OpOptions = {}): string[] {
    const outputs =
      typeof options.outputs === 'number' || options.outputs === undefined
        ? Array.from({ length: options.outputs ?? 1 }, (_, i) => this.fresh(`${opType}_out${i}`))
        : [...options.outputs];
    this.nodes.push(nodeProto(opType, inputs, outputs, options.attrs ?? [], options.domain ?? '', this.fresh(opType)));
    return outputs;
  }

  /** Adds a single-output node; returns its output name. */
  op1(opType: string, inputs: readonly string[], options: Omit<OpOptions, 'outputs'> & { output?: string } = {}): string {
    const { output, ...rest } = options;
    return this.op(opType, inputs, { ...rest, outputs: output ? [output] : 1 })[0];
  }

  initializer(
    name: string,
    dataType: DataTypeId,
    dims: readonly number[],
    data: Float32Array | Int32Array | BigInt64Array | Uint8Array,
  ): string {
    this.initializers.push(tensorProto(name, dataType, dims, data, this.external));
    return name;
  }

  weight(name: string, dims: readonly number[], data: Float32Array): string {
    return this.initializer(name, DataType.FLOAT, dims, data);
  }

  /** An int64 constant; dims [] makes a scalar, default a 1-D tensor. */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(this.fresh('const_i64'), DataType.INT64, dims, BigInt64Array.from(values.map(BigInt)));
  }

  float(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(this.fresh('const_f32'), DataType.FLOAT, dims, Float32Array.from(values));
  }

  toGraph(): GraphProto {
    return {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    };
  }
}
