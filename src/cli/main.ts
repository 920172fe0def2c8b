// cli: the `aigw` command (commander): serve, keys, models, usage, audit, deploy check. Each
// subcommand translates flags into calls of the modules below; no logic lives here.
import { Command } from 'commander';
import { auditCommand } from './audit-command.js';
import { deployCommand } from './deploy-command.js';
import { keysCommand } from './keys-command.js';
import { modelsCommand } from './models-command.js';
import { serveCommand } from './serve-command.js';
import { usageCommand } from './usage-command.js';

const program = new Command('aigw')
  .description('serverless AI gateway for open models')
  .option('-c, --config <file>', 'configuration file (default: aigw.toml here, if there is one)')
  .addCommand(serveCommand())
  .addCommand(keysCommand())
  .addCommand(auditCommand())
  .addCommand(modelsCommand())
  .addCommand(usageCommand())
  .addCommand(deployCommand());

program.parseAsync().catch((error: unknown) => {
  // Typed errors carry messages written for the operator; show them without a stack trace.
  console.error(`aigw: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
