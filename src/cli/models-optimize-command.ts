import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_MIN_AGREEMENT, optimizeModel } from '../engine/index.js';

function fraction(value: string): number {
  const parsed = Number(value);
  if (!(parsed >= 0 && parsed <= 1)) throw new InvalidArgumentError('expected a number from 0 to 1');
  return parsed;
}

function positiveInteger(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError('expected a positive whole number');
  return Number(value);
}

const LM_HEAD_BITS = { int8: 8, int4: 4, keep: 'keep' } as const;

/** `aigw models optimize <folder>`: a faster package version, kept only if its tokens agree with the original's. */
export function optimizeCommand(): Command {
  return new Command('optimize')
    .description('write a faster version of a package: MatMulNBits accuracy_level, quantized lm_head (and tied embeddings)')
    .argument('<folder>', 'a model package folder (with manifest.json)')
    .option('--out <folder>', 'where to write the new package (default: <folder>-opt)')
    .option('--version <version>', 'version of the new package (default: <version>-opt)')
    .addOption(new Option('--accuracy-level <n>', 'MatMulNBits accuracy_level: 4 = int8 activations, 0 = fp32').choices(['0', '1', '2', '3', '4']).default('4'))
    .addOption(new Option('--lm-head <precision>', 'quantize an fp32 lm_head').choices(Object.keys(LM_HEAD_BITS)).default('int8'))
    .option('--keep-embeddings', 'keep a tied embedding table fp32 instead of gathering from the quantized lm_head')
    .option('--min-agreement <fraction>', `greedy agreement below which nothing is written (default ${DEFAULT_MIN_AGREEMENT})`, fraction)
    .option('--force', 'keep the new package below the agreement bar, with a warning')
    .option('--threads <n>', 'onnxruntime threads for the comparison and speed runs', positiveInteger)
    .action(async (folder: string, options) => {
      const out = options.out ?? `${path.resolve(folder)}-opt`;
      const result = await optimizeModel(folder, out, {
        version: options.version,
        accuracyLevel: Number(options.accuracyLevel),
        lmHeadBits: LM_HEAD_BITS[options.lmHead as keyof typeof LM_HEAD_BITS],
        quantizeTiedEmbeddings: !options.keepEmbeddings,
        minAgreement: options.minAgreement,
        force: options.force,
        threads: options.threads,
      });
      const { changes, comparison: c, manifest } = result;
      const head =
        changes.lmHead.action === 'quantized'
          ? `lm_head int${changes.lmHead.bits}${changes.lmHead.tied ? ' (tied)' : ''} ${(changes.lmHead.fp32Bytes / 1e6).toFixed(1)} -> ${(changes.lmHead.quantizedBytes / 1e6).toFixed(1)} MB`
          : `lm_head kept: ${changes.lmHead.reason}`;
      const embeddings = changes.embeddings.action === 'GatherBlockQuantized' ? 'embeddings gathered from the quantized lm_head' : `embeddings kept: ${changes.embeddings.reason}`;
      console.log(`wrote ${manifest.name}@${manifest.version} to ${out}`);
      console.log(`  ${changes.matMulNBits} MatMulNBits at accuracy_level ${changes.accuracyLevel}; ${head}; ${embeddings}`);
      console.log(
        `  greedy agreement ${(c.top1Agreement * 100).toFixed(1)} % (${c.positions} positions, ${c.identicalContinuations}/${c.prompts} prompts identical), ` +
          `relative logit error max ${c.maxRelativeLogitError.toFixed(4)} mean ${c.meanRelativeLogitError.toFixed(4)}`,
      );
      if (c.speedUp !== undefined) {
        console.log(`  decode ${c.originalMsPerToken!.toFixed(2)} -> ${c.candidateMsPerToken!.toFixed(2)} ms/token: ${c.speedUp.toFixed(2)}x speed-up`);
      }
      if (result.warning) console.warn(`aigw: warning: ${result.warning}`);
    });
}
