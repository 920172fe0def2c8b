// The Hugging Face Optimum / transformers.js layout: plain ONNX ops, an additive mask, rotary by
// Mul/Add, and a growing KV cache of past + new.
import { DataType, attrInt, attrInts, valueInfo } from './onnx-writer.js';
import { type GraphWeightSource, type LlamaGraph, MASK_MIN, rotaryTables } from './llama-ops.js';
import type { LlamaShape } from './weights.js';

export function buildOptimum(lg: LlamaGraph, shape: LlamaShape, weights: GraphWeightSource): void {
  const g = lg.g;
  const { numHeads: h, numKvHeads: kv, headDim: d, hiddenSize: e } = shape;
  const group = h / kv;
  const withPositions = lg.options.io?.positionIds ?? true;
  g.inputs.push(
    valueInfo('input_ids', lg.idsType, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', lg.idsType, ['batch_size', 'total_sequence_length']),
  );
  if (withPositions) g.inputs.push(valueInfo('position_ids', lg.idsType, ['batch_size', 'sequence_length']));
  lg.kvInputsAndOutputs('past_sequence_length');
  const float16Kv = lg.kvType === DataType.FLOAT16;

  // Additive mask [batch, 1, 1, seq, total]: query i (absolute position past+i) sees keys 0..past+i
  // that the attention mask does not mark as padding.
  const mask = g.scope('attention_mask', () => {
    const zero = g.int64([0], []);
    const one = g.int64([1], []);
    const seqLen = g.op1('Gather', [g.op1('Shape', ['input_ids']), one], { attrs: [attrInt('axis', 0)] });
    const pastLen = g.op1('Gather', [g.op1('Shape', ['past_key_values.0.key']), g.int64([2], [])], {
      attrs: [attrInt('axis', 0)],
    });
    const totalLen = g.op1('Add', [pastLen, seqLen]);
    const queryPos = g.op1('Unsqueeze', [g.op1('Range', [pastLen, totalLen, one]), g.int64([1])]);
    const keyPos = g.op1('Unsqueeze', [g.op1('Range', [zero, totalLen, one]), g.int64([0])]);
    const causal = g.op1('LessOrEqual', [keyPos, queryPos]);
    const notPadding = g.op1('Unsqueeze', [g.op1('Cast', ['attention_mask'], { attrs: [attrInt('to', DataType.BOOL)] }), g.int64([1, 2, 3])]);
    const allowed = g.op1('And', [causal, notPadding]);
    const additive = g.op1('Where', [allowed, g.float([0], []), g.float([MASK_MIN], [])]);
    // Without a position_ids input, positions are past_length + i (a single unpadded sequence).
    return { additive, queryPositions: g.op1('Unsqueeze', [g.op1('Range', [pastLen, totalLen, one]), g.int64([0])]) };
  });
  const positions = withPositions ? 'position_ids' : mask.queryPositions;

  // cos/sin [batch, 1, seq, headDim] from position_ids, rotate_half layout (the half table repeated).
  const tables = rotaryTables(shape, weights.ropeFreqFactors);
  const [cos, sin] = g.scope('rotary', () =>
    (['cos', 'sin'] as const).map((kind) => {
      const table = g.weight(`${kind}_cache`, [shape.contextLength, d / 2], tables[kind]);
      const half = g.op1('Gather', [table, positions], { attrs: [attrInt('axis', 0)] });
      const full = g.op1('Concat', [half, half], { attrs: [attrInt('axis', -1)] });
      return g.op1('Unsqueeze', [full, g.int64([1])]);
    }),
  );
  const rope = (t: string): string => {
    const [first, second] = g.op('Split', [t], { attrs: [attrInt('axis', -1)], outputs: 2 });
    const rotated = g.op1('Concat', [g.op1('Neg', [second]), first], { attrs: [attrInt('axis', -1)] });
    return g.op1('Add', [g.op1('Mul', [t, cos]), g.op1('Mul', [rotated, sin])]);
  };
  const toHeads = (t: string, heads: number): string =>
    g.op1('Transpose', [g.op1('Reshape', [t, g.int64([0, 0, heads, d])])], { attrs: [attrInts('perm', [0, 2, 1, 3])] });

  let x = lg.embed();
  for (let i = 0; i < shape.numLayers; i++) {
    const layer = weights.layer(i);
    const prefix = `model.layers.${i}`;
    x = g.scope(`layers.${i}`, () => {
      const normed = lg.rmsNorm(x, `${prefix}.input_layernorm`, layer.inputNorm);
      const attention = g.scope('attn', () => {
        const q = rope(toHeads(lg.linear(normed, `${prefix}.self_attn.q_proj`, layer.qProj, e, h * d, layer.qBias), h));
        const k = rope(toHeads(lg.linear(normed, `${prefix}.self_attn.k_proj`, layer.kProj, e, kv * d, layer.kBias), kv));
        const v = toHeads(lg.linear(normed, `${prefix}.self_attn.v_proj`, layer.vProj, e, kv * d, layer.vBias), kv);
        const toCache = (t: string) => (float16Kv ? g.op1('Cast', [t], { attrs: [attrInt('to', DataType.FLOAT16)] }) : t);
        const fromCache = (t: string) => (float16Kv ? g.op1('Cast', [t], { attrs: [attrInt('to', DataType.FLOAT)] }) : t);
        const keys = fromCache(
          g.op1('Concat', [`past_key_values.${i}.key`, toCache(k)], { attrs: [attrInt('axis', 2)], output: `present.${i}.key` }),
        );
        const values = fromCache(
          g.op1('Concat', [`past_key_values.${i}.value`, toCache(v)], { attrs: [attrInt('axis', 2)], output: `present.${i}.value` }),
        );
        // GQA without copying KV heads: queries grouped [b, kv, group, s, d] broadcast against [b, kv, 1, t, d].
        const grouped = g.op1('Reshape', [q, g.int64([0, kv, group, -1, d])]);
        const keys5 = g.op1('Unsqueeze', [keys, g.int64([2])]);
        const keysT = g.op1('Transpose', [keys5], { attrs: [attrInts('perm', [0, 1, 2, 4, 3])] });
        const scores = g.op1('Mul', [g.op1('MatMul', [grouped, keysT]), g.float([1 / Math.sqrt(d)], [])]);
        const probs = g.op1('Softmax', [g.op1('Add', [scores, mask.additive])], { attrs: [attrInt('axis', -1)] });
        const context = g.op1('MatMul', [probs, g.op1('Unsqueeze', [values, g.int64([2])])]);
        const heads = g.op1('Reshape', [context, g.int64([0, h, -1, d])]);
        const merged = g.op1('Reshape', [
          g.op1('Transpose', [heads], { attrs: [attrInts('perm', [0, 2, 1, 3])] }),
          g.int64([0, 0, h * d]),
        ]);
        return lg.linear(merged, `${prefix}.self_attn.o_proj`, layer.oProj, h * d, e);
      });
      const afterAttention = g.op1('Add', [x, attention]);
      const normed2 = lg.rmsNorm(afterAttention, `${prefix}.post_attention_layernorm`, layer.postAttentionNorm);
      return g.op1('Add', [afterAttention, lg.mlp(normed2, prefix, layer)]);
    });
  }
  lg.head(x);
}
