import path from 'node:path';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { parseRepo, pullModel, pulledPackage } from '../models/hub-pull.js';
import type { ModelManifest } from '../models/manifest.js';
import { LOCAL_MODELS_DIR } from './model-import-command.js';

/** Hugging Face's own variables: a mirror or private Hub endpoint, and a token for gated repos. */
export const HUB_URL_ENV = 'HF_ENDPOINT';
export const HUB_TOKEN_ENV = 'HF_TOKEN';

export interface PullFlags {
  file?: string;
  out?: string;
  precision?: string;
  hubUrl?: string;
  progress?: boolean;
}

/** The folder a pull of `repo` goes to by default: .aigw/models/<owner>--<name>[@revision]. */
export function defaultPullDir(repo: string): string {
  const { name, revision } = parseRepo(repo);
  return path.join(LOCAL_MODELS_DIR, `${name.replace('/', '--')}${revision === 'main' ? '' : `@${revision}`}`.toLowerCase());
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Pulls with a progress bar on stderr; a package pulled before is reused. */
export async function pullWithProgress(repo: string, flags: PullFlags): Promise<{ outDir: string; manifest: ModelManifest; summary: string }> {
  const outDir = path.resolve(flags.out ?? defaultPullDir(repo));
  const existing = await pulledPackage(outDir);
  if (existing) return { outDir, manifest: existing, summary: `${repo} is already pulled into ${outDir}` };
  const bar = new cliProgress.SingleBar(
    {
      format: 'downloading [{bar}] {percentage}% | {value} / {total} | {file}',
      formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? megabytes(value) : String(value)),
      hideCursor: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    const result = await pullModel({
      repo,
      outDir,
      file: flags.file,
      precision: flags.precision,
      hubUrl: flags.hubUrl ?? process.env[HUB_URL_ENV],
      accessToken: process.env[HUB_TOKEN_ENV],
      onProgress: ({ downloadedBytes, totalBytes, file }) => {
        if (flags.progress === false) return;
        if (!started) bar.start(totalBytes, downloadedBytes, { file });
        started = true;
        bar.update(downloadedBytes, { file });
      },
    });
    bar.stop();
    const { name, revision } = parseRepo(repo);
    const summary =
      `pulled ${name}@${revision} (${result.kind}: ${result.files.filter((f) => /\.(onnx|gguf)$/.test(f)).join(', ')}) into ${outDir}: ` +
      `${megabytes(result.downloadedBytes)} downloaded\nserve it: AIGW_MODEL_PATH=${outDir} AIGW_MODEL_NAME=${result.manifest.name} npm start`;
    return { outDir, manifest: result.manifest, summary };
  } finally {
    bar.stop();
  }
}

/** `aigw models pull <repo>[@revision]`: an ONNX export or a GGUF file from the Hugging Face Hub as a package. */
export function pullCommand(): Command {
  return new Command('pull')
    .description('download a model from the Hugging Face Hub (ONNX export or GGUF file) and make it a package')
    .argument('<repo>', 'Hub model id, e.g. onnx-community/Qwen2.5-0.5B-Instruct or owner/name@revision')
    .option('--file <name>', 'the .gguf file, or the ONNX decoder (e.g. onnx/model_q4f16.onnx), to take from the repo')
    .option('--precision <dtype>', 'preferred dtype of an ONNX export (q4, q8, fp16, fp32, ...)', 'q4')
    .option('--out <dir>', `package folder (default: ${LOCAL_MODELS_DIR}/<owner>--<name>)`)
    .option('--hub-url <url>', `Hub endpoint (default: $${HUB_URL_ENV} or https://huggingface.co); token from $${HUB_TOKEN_ENV}`)
    .option('--no-progress', 'no progress bar')
    .action(async (repo: string, flags: PullFlags) => {
      console.log((await pullWithProgress(repo, flags)).summary);
    });
}
