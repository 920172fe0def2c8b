import { Command, InvalidArgumentError } from 'commander';
import { formatUsd, readUsage, type DailyUsage } from '../admission/index.js';
import { withStore } from './local-store.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DEFAULT_DAYS = 7;

/** `aigw usage`: the usage roll-up per key and UTC day, as a table or JSON. */
export function usageCommand(): Command {
  return new Command('usage')
    .description('requests, cache hits, tokens, cost and rejections by reason, per key and UTC day, with the requests each model version served (default: the last 7 days)')
    .option('--key <keyId>', 'one key (key_...); default: every key')
    .option('--from <day>', 'first UTC day, YYYY-MM-DD (default: 6 days before --to)', day)
    .option('--to <day>', 'last UTC day, YYYY-MM-DD (default: today)', day)
    .option('--json', 'print JSON (one object per key and day) instead of a table')
    .action(async (options: { key?: string; from?: string; to?: string; json?: boolean }, command: Command) => {
      const to = options.to ?? new Date().toISOString().slice(0, 10);
      const from = options.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_DAYS - 1) * 86_400_000).toISOString().slice(0, 10);
      if (from > to) throw new InvalidArgumentError(`--from ${from} is after --to ${to}`);
      await withStore(command, async (store) => {
        const usage = await readUsage(store, { from, to, keyId: options.key });
        console.log(options.json ? JSON.stringify(usage.map(asJson), null, 2) : table(usage));
      });
    });
}

function day(value: string): string {
  if (!DAY.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) throw new InvalidArgumentError('expected a day as YYYY-MM-DD');
  return value;
}

function asJson(usage: DailyUsage) {
  return { ...usage, costUsd: formatUsd(usage.costMicros) };
}

function table(usage: DailyUsage[]): string {
  if (usage.length === 0) return 'no usage in this range';
  const rows = usage.map((u) => [
    u.day,
    u.keyId,
    String(u.requests),
    String(u.cacheHits),
    String(u.promptTokens),
    String(u.completionTokens),
    formatUsd(u.costMicros),
    Object.entries(u.rejections)
      .map(([reason, count]) => `${reason}=${count}`)
      .join(' ') || '-',
    Object.entries(u.byVersion)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([version, v]) => `${version}=${v.requests}`)
      .join(' ') || '-',
  ]);
  const header = ['day', 'key', 'requests', 'cache_hits', 'prompt_tokens', 'completion_tokens', 'cost_usd', 'rejections', 'by_version'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
