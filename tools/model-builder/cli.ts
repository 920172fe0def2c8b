// Command line for the model builder:
//   tsx tools/model-builder/cli.ts --preset tiny --layout optimum --precision int4 --out <dir>
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { buildModelPackage } from './package-writer.js';
import { PRESETS, isPresetName, presetShape } from './presets.js';

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError('not an integer');
  return parsed;
}

const program = new Command('model-builder')
  .description('Build a seeded Llama-family ONNX decoder as an aigw model package')
  .addOption(new Option('--preset <name>', 'model shape').choices(Object.keys(PRESETS)).default('tiny'))
  .addOption(new Option('--layout <layout>', 'export layout').choices(['optimum', 'genai']).default('optimum'))
  .addOption(new Option('--precision <precision>', 'weight precision').choices(['fp32', 'int8', 'int4']).default('int4'))
  .requiredOption('--out <dir>', 'package folder to create')
  .option('--seed <n>', 'weights seed', integer, 42)
  .option('--name <name>', 'model name in the manifest (default: aigw-<preset>)')
  .option('--model-version <version>', 'model version in the manifest', '1')
  .option('--all-logits', 'emit logits for every position, not just the last')
  .option('--accuracy-level <n>', 'MatMulNBits accuracy_level (0 fp32, 4 int8 activations)', integer)
  .option('--price-input <micros>', 'price per million input tokens, integer micro-dollars', integer)
  .option('--price-output <micros>', 'price per million output tokens, integer micro-dollars', integer)
  .option('--force', 'replace the folder if it exists')
  .action(async (opts) => {
    if (!isPresetName(opts.preset)) throw new InvalidArgumentError(`unknown preset ${opts.preset}`);
    const outDir = path.resolve(opts.out);
    if (opts.force) await rm(outDir, { recursive: true, force: true });
    const price =
      opts.priceInput !== undefined || opts.priceOutput !== undefined
        ? { input: opts.priceInput ?? 0, output: opts.priceOutput ?? 0 }
        : undefined;
    await buildModelPackage({
      outDir,
      layout: opts.layout,
      precision: opts.precision,
      shape: presetShape(opts.preset),
      seed: opts.seed,
      name: opts.name ?? `aigw-${opts.preset}`,
      version: opts.modelVersion,
      lastTokenLogitsOnly: !opts.allLogits,
      accuracyLevel: opts.accuracyLevel,
      ...(price ? { priceMicrosPerMillion: price } : {}),
    });
    process.stdout.write(`${outDir}\n`);
  });

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`model-builder: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
