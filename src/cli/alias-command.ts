// `aigw models alias set|canary|promote|rollback|show`: releases as data. Each change is one
// conditional write to the alias's DynamoDB item; gateways pick it up within [aliases] cache_seconds.
import { Command, InvalidArgumentError } from 'commander';
import { configuredModels, loadConfig, type AigwConfig } from '../config/index.js';
import {
  AliasStore,
  CanaryHealth,
  describeTargets,
  promoteCanary,
  rollbackAlias,
  setAlias,
  startCanary,
  type AliasRecord,
  type RollbackThresholds,
} from '../routing/index.js';
import { openLocalStore } from './local-store.js';

interface ThresholdFlags {
  autoRollback?: boolean;
  maxErrorRateIncrease?: number;
  maxTtftRatio?: number;
  minRequests?: number;
  windowSeconds?: number;
}

export function aliasCommand(): Command {
  const alias = new Command('alias').description('model aliases in DynamoDB: blue/green and canary releases without a deploy');

  withThresholdOptions(
    alias
      .command('set')
      .description('point an alias at one version with all the traffic (ends a running canary)')
      .argument('<alias>', 'the name clients send, e.g. qwen')
      .argument('<target>', 'a model version, name@version, e.g. qwen@3'),
  ).action(async (name: string, target: string, flags: ThresholdFlags, command: Command) =>
    withAliases(command, async ({ aliases, config }) => {
      warnIfUnknown(config, target);
      report(config, await aliases.change(name, (current) => setAlias(current, name, target, new Date(), thresholdsOf(flags))));
    }),
  );

  withThresholdOptions(
    alias
      .command('canary')
      .description('send a share of the alias\'s traffic to a new version (or change the running canary\'s share)')
      .argument('<alias>')
      .argument('<target>', 'the new version, name@version')
      .requiredOption('--weight <percent>', 'whole percent of callers sent to the canary, 0-100', integer),
  ).action(async (name: string, target: string, flags: ThresholdFlags & { weight: number }, command: Command) =>
    withAliases(command, async ({ aliases, config }) => {
      warnIfUnknown(config, target);
      report(config, await aliases.change(name, (current) => startCanary(current, target, flags.weight, new Date(), thresholdsOf(flags))));
    }),
  );

  alias
    .command('promote')
    .description('make the canary the stable version, with all the traffic')
    .argument('<alias>')
    .action(async (name: string, _flags: unknown, command: Command) =>
      withAliases(command, async ({ aliases, config }) => report(config, await aliases.change(name, (current) => promoteCanary(existing(name, current))))),
    );

  alias
    .command('rollback')
    .description('end the canary (all traffic to stable), or without one return to the version before the last set/promote')
    .argument('<alias>')
    .action(async (name: string, _flags: unknown, command: Command) =>
      withAliases(command, async ({ aliases, config }) => report(config, await aliases.change(name, (current) => rollbackAlias(existing(name, current))))),
    );

  alias
    .command('show')
    .description("show an alias's targets, thresholds and the canary's health window (all aliases without a name)")
    .argument('[alias]')
    .action(async (name: string | undefined, _flags: unknown, command: Command) =>
      withAliases(command, async ({ aliases, health }) => {
        const names = name ? [name] : await aliases.names();
        if (names.length === 0) console.log('no aliases; create one with `aigw models alias set <alias> <name@version>`');
        for (const each of names) {
          const record = existing(each, await aliases.read(each));
          console.log(`${record.name}: ${describeTargets(record)}`);
          console.log(`  revision ${record.revision}, last change: ${record.lastChange.action} at ${record.lastChange.at}${record.lastChange.reason ? ` (${record.lastChange.reason})` : ''}`);
          if (record.previous) console.log(`  rollback without a canary returns to ${record.previous}`);
          const t = record.thresholds;
          console.log(
            t.enabled
              ? `  automatic rollback: error rate +${t.maxErrorRateIncrease * 100} points or time to first token ${t.maxTtftRatio}x stable, over ${t.windowSeconds} s, at least ${t.minRequests} requests each`
              : '  automatic rollback: off',
          );
          if (record.canary) {
            const { stable, canary } = await health.window(record);
            const line = (s: typeof stable) => `${s.requests} requests, ${s.errors} errors, mean time to first token ${s.ttftCount ? Math.round(s.ttftSumMs / s.ttftCount) : '-'} ms`;
            console.log(`  window: stable ${line(stable)}; canary ${line(canary)}`);
          }
        }
      }),
    );

  return alias;
}

function withThresholdOptions(command: Command): Command {
  return command
    .option('--no-auto-rollback', 'never roll this alias back automatically')
    .option('--max-error-rate-increase <fraction>', 'roll back when the canary errs this much more often than stable, e.g. 0.05', fraction)
    .option('--max-ttft-ratio <factor>', "roll back when the canary's mean time to first token is this many times stable's", positive)
    .option('--min-requests <n>', 'requests of each version in the window before judging', integer)
    .option('--window-seconds <s>', 'length of the sliding window', integer);
}

function thresholdsOf(flags: ThresholdFlags): Partial<RollbackThresholds> {
  const picked = {
    // Commander sets autoRollback to true unless --no-auto-rollback: only "off" is a change.
    enabled: flags.autoRollback === false ? false : undefined,
    maxErrorRateIncrease: flags.maxErrorRateIncrease,
    maxTtftRatio: flags.maxTtftRatio,
    minRequests: flags.minRequests,
    windowSeconds: flags.windowSeconds,
  };
  return Object.fromEntries(Object.entries(picked).filter(([, value]) => value !== undefined));
}

function existing(name: string, record: AliasRecord | undefined): AliasRecord {
  if (!record) throw new InvalidArgumentError(`no alias ${name}; create it with \`aigw models alias set ${name} <name@version>\``);
  return record;
}

function report(config: AigwConfig, record: AliasRecord): void {
  console.log(`${record.name}: ${describeTargets(record)} (revision ${record.revision})`);
  console.error(`every gateway serves this within ${config.aliases.cache_seconds} s (its alias cache), no deploy needed`);
}

/** A target no model entry of aigw.toml names may be deployed elsewhere: say so, don't refuse. */
function warnIfUnknown(config: AigwConfig, target: string): void {
  const deployed = Array.isArray(config.deploy?.models) ? (config.deploy.models as { name?: string; version?: string }[]) : [];
  const known = [...configuredModels(config).map((m) => `${m.name}@${m.version ?? ''}`), ...deployed.map((m) => `${m.name}@${m.version}`)];
  const name = target.split('@')[0];
  const versionsKnown = known.filter((id) => id.startsWith(`${name}@`) && !id.endsWith('@'));
  if (versionsKnown.length > 0 && !known.includes(target)) {
    console.error(`warning: aigw.toml lists ${versionsKnown.join(', ')} but not ${target}; a gateway that does not serve it sends the alias's traffic to stable`);
  }
}

function integer(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError('expected a whole number');
  return number;
}

function fraction(value: string): number {
  const number = Number(value);
  if (!(number >= 0 && number <= 1)) throw new InvalidArgumentError('expected a fraction from 0 to 1, e.g. 0.05');
  return number;
}

function positive(value: string): number {
  const number = Number(value);
  if (!(number > 0)) throw new InvalidArgumentError('expected a positive number');
  return number;
}

async function withAliases(command: Command, use: (context: { aliases: AliasStore; health: CanaryHealth; config: AigwConfig }) => Promise<void>): Promise<void> {
  const config = loadConfig(command.optsWithGlobals().config);
  const local = await openLocalStore(config, { advertise: false });
  try {
    const aliases = new AliasStore(local.store, { cacheMs: 0 });
    await use({ aliases, health: new CanaryHealth(local.store, aliases), config });
  } finally {
    await local.close();
  }
}
