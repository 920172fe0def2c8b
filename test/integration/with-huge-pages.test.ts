// bin/with-huge-pages.mjs (`npm start`, `npm run bench:engine`): the child runs with glibc's huge-page
// and mmap-threshold tunables added to any tunables already set (a value of the user's own is kept),
// its large blocks then lie on huge pages, it exits as the child exits, and passes SIGTERM on.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const LAUNCHER = fileURLToPath(new URL('../../bin/with-huge-pages.mjs', import.meta.url));
const ADDED = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432';

// Huge pages need THP not set to `never` and glibc 2.35+ (the hugetlb tunable).
const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ?? '0.0';
const [glibcMajor, glibcMinor] = glibc.split('.').map(Number);
const thp = (() => {
  try {
    return readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  } catch {
    return '[never]';
  }
})();
const hugePagesAvailable = !thp.includes('[never]') && (glibcMajor! > 2 || (glibcMajor === 2 && glibcMinor! >= 35));

// 64 blocks of 3 MB, each written once, as a session's weights are: how many MB of them are huge.
const PROBE = `const keep = [];
for (let i = 0; i < 64; i++) keep.push(new Uint8Array(3 << 20).fill(1));
const rollup = require('node:fs').readFileSync('/proc/self/smaps_rollup', 'utf8');
console.log(Number(rollup.match(/^AnonHugePages:\\s+(\\d+)/m)[1]) >> 10);`;

describe('bin/with-huge-pages.mjs', () => {
  it('adds hugetlb=1 and a 32 MB mmap_threshold to the tunables already set', async () => {
    const printTunables = ['-e', 'console.log(process.env.GLIBC_TUNABLES)'];
    const alone = await promisify(execFile)(process.execPath, [LAUNCHER, ...printTunables], { env: { ...process.env, GLIBC_TUNABLES: '' } });
    expect(alone.stdout.trim()).toBe(ADDED);
    const withOthers = await promisify(execFile)(process.execPath, [LAUNCHER, ...printTunables], { env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.check=0' } });
    expect(withOthers.stdout.trim()).toBe(`glibc.malloc.check=0:${ADDED}`);
  });

  it('keeps an mmap_threshold the user set', async () => {
    const printTunables = ['-e', 'console.log(process.env.GLIBC_TUNABLES)'];
    const own = await promisify(execFile)(process.execPath, [LAUNCHER, ...printTunables], { env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072' } });
    expect(own.stdout.trim()).toBe('glibc.malloc.mmap_threshold=131072:glibc.malloc.hugetlb=1');
  });

  it.runIf(hugePagesAvailable)('puts large blocks on huge pages, not only the 2 MB pages that fall inside each', async () => {
    const hugeMb = async (launcher: string[], tunables: string) =>
      Number((await promisify(execFile)(process.execPath, [...launcher, '-e', PROBE], { env: { ...process.env, GLIBC_TUNABLES: tunables } })).stdout);
    // Of 192 MB: with hugetlb alone each 3 MB block holds one whole huge page at most (measured 68 MB).
    expect(await hugeMb([], 'glibc.malloc.hugetlb=1')).toBeLessThanOrEqual(128);
    expect(await hugeMb([LAUNCHER], '')).toBeGreaterThanOrEqual(180);
  });

  it('keeps a hugetlb value the user set (0 turns huge pages off)', async () => {
    const printTunables = ['-e', 'console.log(process.env.GLIBC_TUNABLES)'];
    const off = await promisify(execFile)(process.execPath, [LAUNCHER, ...printTunables], { env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.check=0:glibc.malloc.hugetlb=0' } });
    expect(off.stdout.trim()).toBe('glibc.malloc.check=0:glibc.malloc.hugetlb=0');
  });

  it("exits with the child's exit code", async () => {
    const failing = promisify(execFile)(process.execPath, [LAUNCHER, '-e', 'process.exit(7)']);
    await expect(failing).rejects.toMatchObject({ code: 7 });
  });

  it('passes SIGTERM on and waits for the child to finish', async () => {
    const script = "process.on('SIGTERM', () => { console.log('child got SIGTERM'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000);";
    const launcher = spawn(process.execPath, [LAUNCHER, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    launcher.stdout.on('data', (chunk) => (output += chunk));
    while (!output.includes('ready')) await once(launcher.stdout, 'data');
    launcher.kill('SIGTERM');
    const [code] = await once(launcher, 'exit');
    expect(output).toContain('child got SIGTERM');
    expect(code).toBe(0);
  });
});
