#!/usr/bin/env node
// Runs `node <args>` with glibc's malloc asking for transparent huge pages (the tunable
// glibc.malloc.hugetlb=1, glibc 2.35+; other C libraries ignore it). onnxruntime's weights then
// sit on 2 MB pages, and decoding, which reads all of them every token, measured about 13 %
// faster on Linux with THP in madvise mode (README, "The engine"). `npm start` and
// `npm run bench:engine` go through it. glibc reads tunables only when a process starts, hence
// the child; this parent passes SIGTERM on and exits as the child does. A hugetlb value the
// user has set already (0 turns huge pages off, 2 asks for reserved ones) is kept as it is.
import { spawn } from 'node:child_process';

const own = process.env.GLIBC_TUNABLES ?? '';
const userChoseHugetlb = own.split(':').some((entry) => entry.startsWith('glibc.malloc.hugetlb='));
const tunables = userChoseHugetlb ? own : [own, 'glibc.malloc.hugetlb=1'].filter(Boolean).join(':');
const child = spawn(process.execPath, process.argv.slice(2), { stdio: 'inherit', env: { ...process.env, GLIBC_TUNABLES: tunables } });
// Ctrl-C reaches the whole process group, the child included, so SIGINT is not passed on (a
// second one would cut aigw serve's graceful stop short); SIGTERM, sent to this process alone,
// is. Either way this process waits for the child's own exit.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
