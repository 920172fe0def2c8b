// A local HTTP server that speaks the part of the Hugging Face Hub protocol @huggingface/hub's
// listFiles and downloadFile use: the tree API (sizes, git oids, LFS sha256) and /resolve/ with
// Range requests, over folders on disk. It can cut a download off mid-body to test resuming.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

interface RepoFile {
  path: string;
  abs: string;
  size: number;
  oid: string;
  sha256: string;
  lfs: boolean;
}

export interface HubRequest {
  method: string;
  url: string;
  range?: string;
}

export interface LocalHub {
  url: string;
  requests: HubRequest[];
  /** The next body of `file` stops after `bytes` bytes and the connection is destroyed. */
  cutNext(file: string, bytes: number): void;
  /** The tree reports this sha256 for `file` (to test the hash check). */
  lie(file: string, sha256: string): void;
  close(): Promise<void>;
}

async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(abs, base)));
    else out.push(path.relative(base, abs).split(path.sep).join('/'));
  }
  return out.sort();
}

async function describe(root: string): Promise<RepoFile[]> {
  const files: RepoFile[] = [];
  for (const rel of await walk(root)) {
    const abs = path.join(root, rel);
    const bytes = await readFile(abs);
    const size = (await stat(abs)).size;
    files.push({
      path: rel,
      abs,
      size,
      oid: createHash('sha1').update(`blob ${size}\0`).update(bytes).digest('hex'),
      sha256: createHash('sha256').update(bytes).digest('hex'),
      // Like the Hub: weights live in LFS, small text files in git.
      lfs: /\.(onnx|gguf)$|_data|\.data$/.test(rel),
    });
  }
  return files;
}

/** Serves `repos` (repo id → folder) at revision `main`. */
export async function startLocalHub(repos: Record<string, string>): Promise<LocalHub> {
  const trees = new Map<string, RepoFile[]>();
  for (const [id, dir] of Object.entries(repos)) trees.set(id, await describe(dir));
  const requests: HubRequest[] = [];
  const cuts = new Map<string, number>();
  const lies = new Map<string, string>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, 'http://hub');
    requests.push({ method: req.method!, url: url.pathname, range: req.headers.range });
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(url.pathname);
    if (tree) {
      const files = trees.get(tree[1]);
      if (!files) return notFound(res, 'RepoNotFound');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          files.map((f) => ({
            type: 'file',
            path: f.path,
            size: f.size,
            oid: f.oid,
            ...(f.lfs ? { lfs: { oid: lies.get(f.path) || f.sha256, size: f.size, pointerSize: 134 } } : {}),
          })),
        ),
      );
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(url.pathname);
    const file = resolve ? trees.get(resolve[1])?.find((f) => f.path === decodeURIComponent(resolve[2])) : undefined;
    if (!file) return notFound(res, 'EntryNotFound');
    let start = 0;
    let end = file.size - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
    }
    const headers = { etag: `"${file.lfs ? file.sha256 : file.oid}"`, 'accept-ranges': 'bytes', 'content-length': String(end - start + 1) };
    res.writeHead(range ? 206 : 200, range ? { ...headers, 'content-range': `bytes ${start}-${end}/${file.size}` } : headers);
    const cut = cuts.get(file.path);
    if (cut !== undefined && end - start > 0) {
      cuts.delete(file.path);
      // Send exactly `cut` bytes, then drop the connection a moment after they have left (a fetch
      // body that errors discards the chunks it has not handed out yet, so give the client time).
      void readFile(file.abs).then((bytes) =>
        res.write(bytes.subarray(start, Math.min(end + 1, start + cut)), () => setTimeout(() => res.destroy(), 100)),
      );
      return;
    }
    createReadStream(file.abs, { start, end }).pipe(res);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    cutNext: (file, bytes) => cuts.set(file, bytes),
    lie: (file, sha256) => lies.set(file, sha256),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function notFound(res: ServerResponse, code: string): void {
  res.writeHead(404, { 'x-error-code': code, 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: code }));
}
