import { Command } from 'commander';
import { aliasCommand } from './alias-command.js';
import { importCommand } from './model-import-command.js';
import { packCommand } from './model-pack-command.js';
import { pullCommand } from './model-pull-command.js';
import { listCommand, pushCommand } from './model-store-commands.js';
import { optimizeCommand } from './models-optimize-command.js';

export { CliUsageError, MODEL_BUCKET_ENV } from './model-store-commands.js';

/**
 * `aigw models …`: every command of model work in one group (pack, import, pull, push, list).
 * `aigw model …` stays an alias so older scripts keep working.
 */
export function modelsCommand(): Command {
  return new Command('models')
    .alias('model')
    .description('model packages: pack a folder, import a GGUF file, pull from the Hugging Face Hub, push to and list the S3 model store')
    .addCommand(packCommand())
    .addCommand(importCommand())
    .addCommand(pullCommand())
    .addCommand(pushCommand())
    .addCommand(listCommand())
    .addCommand(optimizeCommand())
    .addCommand(aliasCommand());
}
