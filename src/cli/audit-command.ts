import { Command, InvalidArgumentError } from 'commander';
import { AUDIT_KINDS, listAudit, verifyAudit, type AuditKind } from '../audit/index.js';
import { withStore } from './local-store.js';

/** `aigw audit list|verify`: read the audit trail back, and prove it untouched. */
export function auditCommand(): Command {
  const audit = new Command('audit').description('the audit trail: administrative changes and requests, hash-chained');
  const range = (command: Command) =>
    command
      .option('--since <time>', 'ISO time or age such as 7d, 12h, 30m (default: 1d)', '1d')
      .option('--until <time>', 'ISO time or age (default: now)');

  range(audit.command('list').description('records oldest first, one JSON object a line'))
    .option('--key <keyId>', 'only records of this key')
    .option('--kind <kinds>', `comma-separated kinds: ${AUDIT_KINDS.join(', ')}`)
    .action(async (options: { since: string; until?: string; key?: string; kind?: string }, command: Command) => {
      const kinds = options.kind?.split(',').map((k) => k.trim()).filter(Boolean) ?? [];
      for (const kind of kinds) if (!(AUDIT_KINDS as readonly string[]).includes(kind)) throw new InvalidArgumentError(`--kind ${kind}: expected one of ${AUDIT_KINDS.join(', ')}`);
      await withStore(command, async (store) => {
        const records = await listAudit(store, { ...timeRange(options), keyId: options.key, kinds: kinds as AuditKind[] });
        for (const record of records) console.log(JSON.stringify(record));
      });
    });

  range(audit.command('verify').description("check every stream's hash chain: exits 1 if a record was changed, removed or reordered")).action(
    async (options: { since: string; until?: string }, command: Command) => {
      await withStore(command, async (store) => {
        const result = await verifyAudit(store, timeRange(options));
        for (const stream of result.streams) {
          const verdict = stream.problems.length === 0 ? 'ok' : stream.problems.map((p) => `${p.problem} at seq ${p.seq}`).join('; ');
          console.log(`${stream.stream}\t${stream.records} records\t${verdict}`);
        }
        if (result.expiredStreams) console.log(`${result.expiredStreams} stream(s) past retention, not checked`);
        console.log(result.ok ? `audit trail intact (${result.streams.length} streams)` : 'AUDIT TRAIL TAMPERED WITH');
        if (!result.ok) process.exitCode = 1;
      });
    },
  );
  return audit;
}

function timeRange(options: { since: string; until?: string }): { since: Date; until: Date } {
  return { since: parseTime(options.since, '--since'), until: options.until ? parseTime(options.until, '--until') : new Date() };
}

/** An ISO time, or an age back from now: 90s, 30m, 12h, 7d. */
export function parseTime(value: string, flag: string): Date {
  const age = /^(\d+)([smhd])$/.exec(value.trim());
  if (age) return new Date(Date.now() - Number(age[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[age[2] as 's' | 'm' | 'h' | 'd']);
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new InvalidArgumentError(`${flag} ${value}: expected an ISO time such as 2026-12-01T00:00:00Z or an age such as 7d`);
  return new Date(time);
}
