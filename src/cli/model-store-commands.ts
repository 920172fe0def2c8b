import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { createModelStoreClient, listModelVersions, pushModelPackage } from '../models/index.js';

export const MODEL_BUCKET_ENV = 'AIGW_MODEL_BUCKET';

interface StoreFlags {
  bucket?: string;
  region?: string;
  endpoint?: string;
}

/** Thrown for flags the user must fix; main.ts prints the message without a stack. */
export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

function withStoreOptions(command: Command): Command {
  return command
    .option('--bucket <bucket>', `model bucket (default: $${MODEL_BUCKET_ENV})`)
    .option('--region <region>', 'AWS region of the bucket (default: the AWS SDK chain, e.g. $AWS_REGION)')
    .option('--endpoint <url>', 'S3-compatible endpoint instead of AWS, e.g. http://127.0.0.1:4568 (path-style)');
}

// Read when the command runs, not when it is defined, so the environment of the run counts.
function storeFrom(flags: StoreFlags) {
  const bucket = flags.bucket ?? process.env[MODEL_BUCKET_ENV];
  if (!bucket) throw new CliUsageError(`no model bucket: pass --bucket or set ${MODEL_BUCKET_ENV}`);
  return { bucket, s3: createModelStoreClient({ region: flags.region, endpoint: flags.endpoint }) };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `aigw models push`: uploads a package to the S3 model store. */
export function pushCommand(): Command {
  return withStoreOptions(
    new Command('push')
      .description('upload a model package to s3://<bucket>/models/<name>/<version>/ (packs the folder first if it has no manifest.json)')
      .argument('<folder>', 'the model package folder')
      .requiredOption('--name <name>', 'model name')
      .requiredOption('--version <version>', 'model version (versions are immutable)'),
  ).action(async (folder: string, flags: StoreFlags & { name: string; version: string }) => {
    const { bucket, s3 } = storeFrom(flags);
    const bar = new cliProgress.SingleBar({
      format: 'uploading [{bar}] {percentage}% | {value} / {total} | ETA {eta_formatted}',
      formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? megabytes(value) : String(value)),
      hideCursor: true,
    });
    let started = false;
    try {
      const result = await pushModelPackage({
        s3,
        bucket,
        folder,
        name: flags.name,
        version: flags.version,
        onProgress: ({ uploadedBytes, totalBytes }) => {
          if (!started) {
            bar.start(totalBytes, uploadedBytes);
            started = true;
          } else {
            bar.update(uploadedBytes);
          }
        },
      });
      bar.stop();
      console.log(`pushed ${result.name}@${result.version} to ${result.uri}: ${result.files} files, ${megabytes(result.bytes)}`);
    } finally {
      bar.stop();
      s3.destroy();
    }
  });
}

/** `aigw models list`: the model versions in the S3 model store. */
export function listCommand(): Command {
  return withStoreOptions(new Command('list').description('list the model versions in the store')).action(async (flags: StoreFlags) => {
    const { bucket, s3 } = storeFrom(flags);
    try {
      const versions = await listModelVersions({ s3, bucket });
      if (versions.length === 0) {
        console.log(`no model packages in s3://${bucket}/models/; push one with \`aigw models push <folder> --name <n> --version <v>\``);
        return;
      }
      const rows = [
        ['NAME', 'VERSION', 'SIZE', 'UPLOADED'],
        ...versions.map((v) => [v.name, v.version, megabytes(v.bytes), v.uploadedAt.toISOString()]),
      ];
      const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
      for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
    } finally {
      s3.destroy();
    }
  });
}
