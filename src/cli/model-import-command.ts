import path from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_IMPORT_ACCURACY_LEVEL, type GgufImportResult, importGgufFile } from '../models/gguf-import.js';
import { nonNegativeInteger } from './model-pack-command.js';

/** Where imported and pulled packages go unless --out says otherwise. */
export const LOCAL_MODELS_DIR = '.aigw/models';

/** One line per GGUF tensor type: what became of it. */
export function describeImport(result: GgufImportResult, outDir: string): string {
  const { manifest } = result;
  const bytes = manifest.files.reduce((sum, file) => sum + file.size, 0);
  const tensors = result.tensors.map((t) => `${t.count} ${t.type} ${t.treatment}`).join(', ');
  return (
    `imported ${manifest.name}@${manifest.version} (${result.architecture}; ${tensors}) into ${outDir}: ` +
    `${(bytes / 1e6).toFixed(1)} MB, context ${manifest.contextLength}, eos ${manifest.eosTokenIds.join(',')}\n` +
    `serve it: AIGW_MODEL_PATH=${outDir} AIGW_MODEL_NAME=${manifest.name} npm start`
  );
}

/** `aigw models import <file.gguf>`: a GGUF file (llama.cpp, Ollama, LM Studio) as a model package. */
export function importCommand(): Command {
  return new Command('import')
    .description('turn a GGUF file (architectures llama, qwen2) into a model package')
    .argument('<file>', 'the .gguf file')
    .option('--out <dir>', `package folder to create (default: ${LOCAL_MODELS_DIR}/<name>)`)
    .option('--name <name>', 'model name (default: general.name from the file)')
    .option('--version <version>', 'model version (default: 1)')
    .addOption(
      new Option('--precision <precision>', 'what float tensors (F32/F16/BF16) become; quantized tensors keep their bits')
        .choices(['fp32', 'int8', 'int4'])
        .default('fp32'),
    )
    .addOption(
      new Option('--layout <layout>', 'ONNX layout: genai (GroupQueryAttention, shared KV buffer) or optimum (growing KV cache)')
        .choices(['genai', 'optimum'])
        .default('genai'),
    )
    .addOption(
      new Option('--accuracy-level <n>', 'MatMulNBits accuracy_level: 4 = int8 activations, as llama.cpp computes; 0 = fp32')
        .choices(['0', '1', '2', '3', '4'])
        .default(String(DEFAULT_IMPORT_ACCURACY_LEVEL)),
    )
    .option('--input-price-micros <n>', 'price per million input tokens, integer micro-dollars', nonNegativeInteger, 0)
    .option('--output-price-micros <n>', 'price per million output tokens, integer micro-dollars', nonNegativeInteger, 0)
    .action(async (file: string, options) => {
      const name = options.name ?? path.basename(file).replace(/\.gguf$/i, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
      const outDir = path.resolve(options.out ?? path.join(LOCAL_MODELS_DIR, name));
      const result = await importGgufFile(file, {
        outDir,
        name,
        version: options.version,
        floatPrecision: options.precision,
        layout: options.layout,
        accuracyLevel: Number(options.accuracyLevel),
        priceMicrosPerMillion: { input: options.inputPriceMicros, output: options.outputPriceMicros },
      });
      console.log(describeImport(result, outDir));
    });
}
