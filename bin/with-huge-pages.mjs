#!/usr/bin/env node
// Runs `node <args>` with glibc's malloc asking for transparent huge pages (the tunable
// glibc.malloc.hugetlb=1, glibc 2.35+; other C libraries ignore it). onnxruntime's weights then
// sit on 2 MB pages, and decoding, which reads all of them every token, measured about 13 %
// faster on Linux with THP in madvise mode (README, "The engine"). `npm start` and
// `npm run bench:engine` go through it. glibc reads tunables only when a process starts, hence
// the child; this parent passes SIGTERM on and exits as the child does.
//
// glibc.malloc.mmap_threshold at its maximum, 32 MB, goes with it: above the threshold (128 KB
// at start) glibc gives each block a mapping of its own, which starts anywhere within a 2 MB page,
// so only the whole 2 MB pages inside a block can be huge. Loading a package left about half of
// the first session's weights on small pages that way (150 of 328 MB), and decoding measured 7-13 %
// slower than with the threshold raised, where the blocks come from the heap, which grows in one
// piece (288 of 324 MB on huge pages). A value the user has set already for either tunable is kept
// as it is; a hugetlb of 0 turns huge pages off, and the threshold, there only for them, with it.
import { spawn } from 'node:child_process';

const ADDED = [
  ['glibc.malloc.hugetlb', '1'],
  ['glibc.malloc.mmap_threshold', String(32 * 1024 * 1024)],
];

const own = process.env.GLIBC_TUNABLES ?? '';
const ownEntries = own.split(':');
const hugePagesOff = ownEntries.includes('glibc.malloc.hugetlb=0');
const userSet = new Set(ownEntries.map((entry) => entry.split('=')[0]));
const added = hugePagesOff ? [] : ADDED.filter(([name]) => !userSet.has(name)).map(([name, value]) => `${name}=${value}`);
const tunables = [own, ...added].filter(Boolean).join(':');
const child = spawn(process.execPath, process.argv.slice(2), { stdio: 'inherit', env: { ...process.env, GLIBC_TUNABLES: tunables } });
// Ctrl-C reaches the whole process group, the child included, so SIGINT is not passed on (a
// second one would cut aigw serve's graceful stop short); SIGTERM, sent to this process alone,
// is. Either way this process waits for the child's own exit.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
