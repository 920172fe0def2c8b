// Packs a downloaded Hugging Face model folder (Optimum or onnxruntime-genai export) into an
// aigw model package by writing its manifest.json. `aigw model pack` wraps the same function.
import { Command, InvalidArgumentError } from 'commander';
import { ModelPackageError, packModelFolder } from '../src/models/index.js';

function nonNegativeInteger(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number (integer micro-dollars)');
  return Number(value);
}

function positiveInteger(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError('expected a positive whole number');
  return Number(value);
}

const program = new Command('pack-model')
  .description('write manifest.json for a model folder (files, sizes, SHA-256, tokens, price)')
  .argument('<folder>', 'the downloaded model folder')
  .option('--name <name>', 'model name (default: the folder name)')
  .option('--version <version>', 'model version (default: 1)')
  .option('--onnx <file>', 'ONNX file to use, relative to the folder (default: chosen by precision)')
  .option('--precision <dtype>', 'preferred precision for Optimum exports: q4, q8, int8, uint8, fp32, fp16, q4f16, bnb4')
  .option('--context-length <tokens>', 'override the context length from the config', positiveInteger)
  .option('--input-price-micros <n>', 'price per million input tokens, integer micro-dollars', nonNegativeInteger, 0)
  .option('--output-price-micros <n>', 'price per million output tokens, integer micro-dollars', nonNegativeInteger, 0)
  .action(async (folder: string, options) => {
    const manifest = await packModelFolder(folder, {
      name: options.name,
      version: options.version,
      onnxFile: options.onnx,
      preferPrecision: options.precision,
      contextLength: options.contextLength,
      priceMicrosPerMillion: { input: options.inputPriceMicros, output: options.outputPriceMicros },
    });
    const bytes = manifest.files.reduce((sum, file) => sum + file.size, 0);
    console.log(
      `packed ${manifest.name}@${manifest.version} (${manifest.layout}, ${manifest.onnxFile}${manifest.precision ? `, ${manifest.precision}` : ''}): ` +
        `${manifest.files.length} files, ${(bytes / 1e6).toFixed(1)} MB, context ${manifest.contextLength}, eos ${manifest.eosTokenIds.join(',')}`,
    );
  });

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ModelPackageError) {
    console.error(`pack-model: ${error.code}: ${error.message}`);
    process.exitCode = 1;
    return;
  }
  throw error;
});
