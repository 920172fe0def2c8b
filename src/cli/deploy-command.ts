import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { checkReservedConcurrency } from '../../infra/concurrency-quota.js';
import { loadDeployConfig } from '../../infra/deploy-config.js';
import { deployCommands, gatewayUrlsFromOutputs } from '../../infra/deploy-steps.js';
import { regionalStackName } from '../../infra/stack-names.js';

/** Where the regional stacks' outputs land between the two `cdk deploy` steps (gitignored). */
const OUTPUTS_FILE = path.join('.aigw', 'cdk-outputs.json');

function configPathOf(command: Command): string {
  return (command.optsWithGlobals().config as string | undefined) ?? process.env.AIGW_CONFIG ?? 'aigw.toml';
}

/** Thrown when the account can't hold the configured reservations; the message says what to raise. */
export class ConcurrencyQuotaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConcurrencyQuotaError';
  }
}

/** Reads each region's Lambda concurrency quota and refuses reservations that can't fit. */
export async function runDeployCheck(configPath: string, say: (line: string) => void): Promise<void> {
  const config = loadDeployConfig(configPath);
  // Loaded here so that `aigw serve` never pays for the Lambda client.
  const { LambdaClient } = await import('@aws-sdk/client-lambda');
  const clients: InstanceType<typeof LambdaClient>[] = [];
  try {
    const verdicts = await checkReservedConcurrency({
      config,
      stackName: regionalStackName,
      lambdaClient: (region) => {
        const client = new LambdaClient({ region, maxAttempts: 3 });
        clients.push(client);
        return client;
      },
    });
    const refused = verdicts.filter((verdict) => !verdict.fits);
    for (const verdict of verdicts.filter((each) => each.fits)) say(`concurrency ok: ${verdict.message}`);
    if (refused.length > 0) throw new ConcurrencyQuotaError(refused.map((verdict) => verdict.message).join('\n'));
  } finally {
    for (const client of clients) client.destroy();
  }
}

function runCdk(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['--no-install', 'cdk', ...args], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`cdk ${args[0]} failed (${signal ?? `exit code ${code}`})`)),
    );
  });
}

/** `aigw deploy check|stacks`: what `npm run deploy` runs, in that order. */
export function deployCommand(): Command {
  const deploy = new Command('deploy').description('deploy aigw into the AWS account of the current credentials');

  deploy
    .command('check')
    .description("check that [deploy]'s reserved concurrency fits the account's Lambda quota in every region")
    .action(async (_options: unknown, command: Command) => {
      await runDeployCheck(configPathOf(command), (line) => process.stderr.write(`${line}\n`));
    });

  deploy
    .command('stacks')
    .description('cdk deploy the regional stacks, then the edge stack with the gateway URLs they output')
    .argument('[cdk-args...]', 'more cdk deploy arguments after --, e.g. -- --profile prod')
    .action(async (extra: string[], _options: unknown, command: Command) => {
      const configPath = configPathOf(command);
      const config = loadDeployConfig(configPath);
      await mkdir(path.dirname(OUTPUTS_FILE), { recursive: true });
      const commands = deployCommands({ regions: config.regions, configPath, outputsFile: OUTPUTS_FILE, extra });
      await runCdk(commands.regional);
      const outputs: unknown = JSON.parse(await readFile(OUTPUTS_FILE, 'utf8'));
      await runCdk(commands.edge(gatewayUrlsFromOutputs(outputs, config.regions)));
    });

  return deploy;
}
