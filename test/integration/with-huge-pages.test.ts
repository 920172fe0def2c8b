// bin/with-huge-pages.mjs (`npm start`, `npm run bench:engine`): the child runs with glibc's huge-page
// tunable added to any tunables already set (a hugetlb value of the user's own is kept), exits as
// the child exits, and passes SIGTERM on.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const LAUNCHER = fileURLToPath(new URL('../../bin/with-huge-pages.mjs', import.meta.url));

describe('bin/with-huge-pages.mjs', () => {
  it('adds glibc.malloc.hugetlb=1 to the tunables already set', async () => {
    const printTunables = ['-e', 'console.log(process.env.GLIBC_TUNABLES)'];
    const alone = await promisify(execFile)(process.execPath, [LAUNCHER, ...printTunables], { env: { ...process.env, GLIBC_TUNABLES: '' } });
    expect(alone.stdout.trim()).toBe('glibc.malloc.hugetlb=1');
    const withOthers = await promisify(execFile)(process.execPath, [LAUNCHER, ...printTunables], { env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.check=0' } });
    expect(withOthers.stdout.trim()).toBe('glibc.malloc.check=0:glibc.malloc.hugetlb=1');
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
