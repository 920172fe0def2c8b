import { Command, InvalidArgumentError } from 'commander';
import { packModelFolder } from '../models/index.js';

export function nonNegativeInteger(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number (integer micro-dollars)');
  return Number(value);
}

function positiveInteger(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError('expected a positive whole number');
  return Number(value);
}

/** `aigw models pack <folder>`: turns a downloaded Hugging Face folder into an aigw model package. */
export function packCommand(): Command {
  return new Command('pack')
    .description('write manifest.json for a model folder (files, sizes, SHA-256, tokens, price)')
    .argument('<folder>', 'the downloaded model folder (Optimum/transformers.js or onnxruntime-genai export)')
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
}
