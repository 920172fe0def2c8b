// The onnxruntime-genai layout, as its builder.py writes it: GroupQueryAttention over one shared
// KV buffer (or MultiHeadAttention with a growing cache), q/k/v in one product, fused residual norms.
import { DataType, attrFloat, attrInt, valueInfo } from './onnx-writer.js';
import { type GraphWeightSource, type LlamaGraph, LlamaGraphError, rotaryTables } from './llama-ops.js';
import type { LlamaShape } from './weights.js';

export function buildGenai(lg: LlamaGraph, shape: LlamaShape, weights: GraphWeightSource): void {
  const g = lg.g;
  const { numHeads: h, numKvHeads: kv, headDim: d, hiddenSize: e } = shape;
  if (lg.options.io?.kvType === 'float16' || lg.options.io?.positionIds === false) {
    throw new LlamaGraphError('the genai layout takes no position_ids and keeps a float32 KV cache in this builder');
  }
  g.inputs.push(
    valueInfo('input_ids', lg.idsType, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', lg.idsType, ['batch_size', 'total_sequence_length']),
  );
  const mha = lg.options.attention === 'MultiHeadAttention';
  lg.kvInputsAndOutputs('past_sequence_length', mha ? h : kv);

  // GroupQueryAttention: the lengths it takes instead of a mask.
  const [seqlensK, totalSeqLen] = mha ? ['', ''] : g.scope('attn_mask_reformat', () => {
    const mask = lg.idsType === DataType.INT32 ? g.op1('Cast', ['attention_mask'], { attrs: [attrInt('to', DataType.INT64)] }) : 'attention_mask';
    const lengths = g.op1('ReduceSum', [mask, g.int64([1])], { attrs: [attrInt('keepdims', 0)] });
    const seqlens = g.op1('Cast', [g.op1('Sub', [lengths, g.int64([1], [])])], { attrs: [attrInt('to', DataType.INT32)] });
    const total = g.op1('Gather', [g.op1('Shape', [mask]), g.int64([1], [])], { attrs: [attrInt('axis', 0)] });
    return [seqlens, g.op1('Cast', [total], { attrs: [attrInt('to', DataType.INT32)] })];
  });
  const tables = rotaryTables(shape, weights.ropeFreqFactors);
  const cosCache = g.weight('cos_cache', [shape.contextLength, d / 2], tables.cos);
  const sinCache = g.weight('sin_cache', [shape.contextLength, d / 2], tables.sin);
  // MultiHeadAttention: positions past..total-1 of the one unpadded sequence, [1, sequence].
  const positions = mha
    ? g.scope('positions', () => {
        const total = g.op1('Gather', [g.op1('Shape', ['attention_mask']), g.int64([1], [])], { attrs: [attrInt('axis', 0)] });
        const length = g.op1('Gather', [g.op1('Shape', ['input_ids']), g.int64([1], [])], { attrs: [attrInt('axis', 0)] });
        const range = g.op1('Range', [g.op1('Sub', [total, length]), total, g.int64([1], [])]);
        return g.op1('Unsqueeze', [range, g.int64([0])]);
      })
    : '';
  const rotary = (t: string) => g.op1('RotaryEmbedding', [t, positions, cosCache, sinCache], { domain: 'com.microsoft', attrs: [attrInt('interleaved', 0)] });
  // [batch, seq, kv * d] -> [batch, seq, h * d]: each KV head once per query head of its group.
  const repeatKv = (t: string) => {
    if (h === kv) return t;
    const heads = g.op1('Unsqueeze', [g.op1('Reshape', [t, g.int64([0, 0, kv, d])]), g.int64([3])]);
    return g.op1('Reshape', [g.op1('Expand', [heads, g.int64([1, 1, kv, h / kv, d])]), g.int64([0, 0, h * d])]);
  };

  // The residual stream as onnxruntime-genai's builder writes it: each residual Add fused with the
  // RMSNorm after it (SkipSimplifiedLayerNormalization, whose 4th output is the sum). Written as an
  // Add and a norm, onnxruntime's own fusions leave them two nodes (its profiler counts them).
  let residual = lg.embed();
  let pending: string | undefined; // the last layer's MLP output, not yet added to the residual
  const addAndNorm = (delta: string | undefined, name: string, weight: Float32Array): string => {
    if (delta === undefined) return lg.rmsNorm(residual, name, weight);
    const [normed, , , sum] = g.op('SkipSimplifiedLayerNormalization', [delta, residual, g.weight(`${name}.weight`, [e], weight)], {
      domain: 'com.microsoft',
      outputs: [g.fresh('SkipSimplifiedLayerNormalization_out'), '', '', g.fresh('residual')],
      attrs: [attrFloat('epsilon', shape.rmsNormEps)],
    });
    residual = sum!;
    return normed!;
  };
  for (let i = 0; i < shape.numLayers; i++) {
    const layer = weights.layer(i);
    const prefix = `model.layers.${i}`;
    pending = g.scope(`layers.${i}`, () => {
      const normed = addAndNorm(pending, `${prefix}.input_layernorm`, layer.inputNorm);
      const attention = g.scope('attn', () => {
        // GroupQueryAttention takes q, k and v packed in one tensor (key and value left empty), so one
        // product serves all three, as onnxruntime-genai's builder writes it.
        const qkv = mha
          ? undefined
          : lg.linearPacked(normed, `${prefix}.self_attn.qkv_proj`, [
              { weight: layer.qProj, n: h * d, bias: layer.qBias },
              { weight: layer.kProj, n: kv * d, bias: layer.kBias },
              { weight: layer.vProj, n: kv * d, bias: layer.vBias },
            ], e);
        const [q, k, v] = qkv !== undefined
          ? [qkv, '', '']
          : [
              lg.linear(normed, `${prefix}.self_attn.q_proj`, layer.qProj, e, h * d, layer.qBias),
              lg.linear(normed, `${prefix}.self_attn.k_proj`, layer.kProj, e, kv * d, layer.kBias),
              lg.linear(normed, `${prefix}.self_attn.v_proj`, layer.vProj, e, kv * d, layer.vBias),
            ];
        const past = [`past_key_values.${i}.key`, `past_key_values.${i}.value`];
        const present = [`present.${i}.key`, `present.${i}.value`];
        const [context] = mha
          ? g.op('MultiHeadAttention', [rotary(q), repeatKv(rotary(k)), repeatKv(v), '', '', '', ...past], {
              domain: 'com.microsoft',
              outputs: [g.fresh('MultiHeadAttention_out'), ...present],
              attrs: [attrInt('num_heads', h), attrFloat('scale', 1 / Math.sqrt(d)), attrInt('unidirectional', 1)],
            })
          : g.op('GroupQueryAttention', [q, k, v, ...past, seqlensK, totalSeqLen, cosCache, sinCache], {
              domain: 'com.microsoft',
              outputs: [g.fresh('GroupQueryAttention_out'), ...present],
              attrs: [
                attrInt('num_heads', h),
                attrInt('kv_num_heads', kv),
                attrFloat('scale', 1 / Math.sqrt(d)),
                attrInt('do_rotary', 1),
                attrInt('rotary_interleaved', 0),
                attrInt('local_window_size', -1),
              ],
            });
        return lg.linear(context, `${prefix}.self_attn.o_proj`, layer.oProj, h * d, e);
      });
      return lg.mlp(addAndNorm(attention, `${prefix}.post_attention_layernorm`, layer.postAttentionNorm), prefix, layer);
    });
  }
  // One plain Add at the end: the head keeps only the last position before its norm.
  lg.head(pending === undefined ? residual : g.op1('Add', [residual, pending]));
}
