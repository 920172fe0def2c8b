import { Command } from 'commander';
import { aliasCommand } from './alias-command.js';
import { packCommand } from './model-pack-command.js';
import { listCommand, pushCommand } from './model-store-commands.js';

export { CliUsageError, MODEL_BUCKET_ENV } from './model-store-commands.js';

/**
 * `aigw models …`: every command of model work in one group (pack, push, list; import and pull
 * below). `aigw model …` stays an alias so older scripts keep working.
 */
export function modelsCommand(): Command {
  return new Command('models')
    .alias('model')
    .description('model packages: pack a folder, push to and list the S3 model store')
    .addCommand(packCommand())
    .addCommand(pushCommand())
    .addCommand(listCommand())
    .addCommand(aliasCommand());
}
