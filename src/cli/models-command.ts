import { Command } from 'commander';
import { importCommand } from './model-import-command.js';
import { packCommand } from './model-pack-command.js';
import { listCommand, pushCommand } from './model-store-commands.js';
import { optimizeCommand } from './models-optimize-command.js';

export { CliUsageError, MODEL_BUCKET_ENV } from './model-store-commands.js';

/**
 * `aigw models …`: every command of model work in one group (pack, push, list; import and pull
 * below). `aigw model …` stays an alias so older scripts keep working.
 */
export function modelsCommand(): Command {
  return new Command('models')
    .alias('model')
    .description('model packages: pack a folder, import a GGUF file, push to and list the S3 model store')
    .addCommand(packCommand())
    .addCommand(importCommand())
    .addCommand(pushCommand())
    .addCommand(listCommand())
    .addCommand(optimizeCommand());
}
