// `aigw models pull <repo>[@revision]`: a model from the Hugging Face Hub (@huggingface/hub) as a
// model package. An ONNX export downloads the files one decoder needs (the q4 one unless asked
// otherwise) and is packed; a GGUF repo downloads one .gguf file and is imported. Every file is
// resumed from its partial download, and checked against the size and hash in the Hub's tree.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type ListFileEntry, downloadFile, listFiles } from '@huggingface/hub';
import { ModelPackageError } from './errors.js';
import { importGgufFile } from './gguf-import.js';
import { chooseOnnxCandidate, precisionOfOnnxName } from './layout.js';
import { type ModelManifest, readManifest } from './manifest.js';
import { packModelFolder } from './pack.js';

export interface PullOptions {
  /** `owner/name` or `owner/name@revision`. */
  repo: string;
  /** A .gguf file, or the ONNX decoder (e.g. onnx/model_q4.onnx), to take from the repo. */
  file?: string;
  /** transformers.js dtype preferred for ONNX exports; default q4. */
  precision?: string;
  /** Package folder to create. */
  outDir: string;
  /** Where downloads wait until complete (resumed from here); default `<outDir>.download`. */
  downloadDir?: string;
  hubUrl?: string;
  accessToken?: string;
  /** Attempts per file; each one resumes where the last stopped. Default 3. */
  attempts?: number;
  onProgress?: (progress: { downloadedBytes: number; totalBytes: number; file: string }) => void;
}

export interface PullResult {
  manifest: ModelManifest;
  kind: 'onnx' | 'gguf';
  files: string[];
  downloadedBytes: number;
}

export class HubPullError extends Error {
  override name = 'HubPullError';
}

// Files an ONNX export's package reads besides the decoder and its data.
const ONNX_SIDE_FILES = ['config.json', 'generation_config.json', 'genai_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];
// GGUF quantizations in the order a repo's file is chosen when --file is not given.
const GGUF_PREFERENCE = ['q4_0', 'q4_k_m', 'q8_0', 'q4_k_s', 'q5_k_m', 'q6_k', 'f16', 'bf16', 'f32'];

export function parseRepo(spec: string): { name: string; revision: string } {
  const [name, revision = 'main'] = spec.split('@');
  if (!/^[\w.-]+\/[\w.-]+$/.test(name) || revision === '') {
    throw new HubPullError(`"${spec}" is not a Hub model id; expected owner/name or owner/name@revision`);
  }
  return { name, revision };
}

function chooseGguf(entries: ListFileEntry[], requested?: string): ListFileEntry {
  const ggufs = entries.filter((e) => e.path.toLowerCase().endsWith('.gguf') && !/-\d{5}-of-\d{5}\.gguf$/i.test(e.path));
  if (requested) {
    const match = ggufs.find((e) => e.path === requested);
    if (!match) throw new HubPullError(`no file ${requested} in the repo; GGUF files there: ${ggufs.map((e) => e.path).join(', ') || 'none'}`);
    return match;
  }
  const rank = (e: ListFileEntry) => {
    const index = GGUF_PREFERENCE.findIndex((q) => e.path.toLowerCase().includes(q));
    return index === -1 ? GGUF_PREFERENCE.length : index;
  };
  return [...ggufs].sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path))[0]!;
}

/** The decoder, its external data and the side files of an ONNX export. */
function chooseOnnxFiles(entries: ListFileEntry[], opts: PullOptions): { files: ListFileEntry[]; onnxFile: string } {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const genai = byPath.has('genai_config.json');
  let onnxFile: string;
  if (opts.file) {
    if (!byPath.has(opts.file)) throw new HubPullError(`no file ${opts.file} in the repo`);
    onnxFile = opts.file;
  } else if (genai) {
    onnxFile = 'model.onnx';
  } else {
    const candidates = entries.flatMap((e) => {
      const precision = e.path.startsWith('onnx/') ? precisionOfOnnxName(e.path.slice(5)) : undefined;
      return precision === undefined ? [] : [{ path: e.path, precision }];
    });
    if (candidates.length === 0) throw new HubPullError('the repo has no onnx/model*.onnx decoder and no .gguf file; aigw serves ONNX exports and GGUF files');
    onnxFile = chooseOnnxCandidate(candidates, opts.precision ?? 'q4').path;
  }
  // External data sits beside the decoder: model_q4.onnx_data, model_q4.onnx_data_1, model.onnx.data.
  const data = entries.filter((e) => e.path.startsWith(`${onnxFile}_data`) || e.path.startsWith(`${onnxFile}.data`));
  const side = ONNX_SIDE_FILES.flatMap((f) => (byPath.has(f) ? [byPath.get(f)!] : []));
  return { files: [byPath.get(onnxFile)!, ...data, ...side], onnxFile };
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

/** sha256 for LFS files (the Hub's lfs.oid), git's blob sha1 for small ones (oid). */
async function checkHash(file: string, entry: ListFileEntry): Promise<void> {
  const lfs = entry.lfs?.oid;
  const hash = createHash(lfs ? 'sha256' : 'sha1');
  if (!lfs) hash.update(`blob ${entry.size}\0`);
  await pipeline(createReadStream(file), hash);
  const actual = hash.digest('hex');
  const expected = lfs ?? entry.oid;
  if (expected && actual !== expected) {
    await rm(file, { force: true });
    throw new ModelPackageError('hash_mismatch', `${entry.path} downloaded with ${lfs ? 'SHA-256' : 'git SHA-1'} ${actual}, the Hub says ${expected}; removed, pull again`, { file: entry.path });
  }
}

/** Downloads one file to `target`, appending to `<target>.part` from where an earlier attempt stopped. */
async function downloadOne(entry: ListFileEntry, target: string, opts: PullOptions, repo: { name: string; revision: string }, progress: (bytes: number) => void): Promise<number> {
  const size = entry.lfs?.size ?? entry.size;
  if ((await sizeOf(target)) === size) {
    progress(size);
    return 0;
  }
  const part = `${target}.part`;
  await mkdir(path.dirname(target), { recursive: true });
  const attempts = opts.attempts ?? 3;
  let fetched = 0;
  for (let attempt = 1; ; attempt++) {
    let have = await sizeOf(part);
    if (have > size) {
      await rm(part);
      have = 0;
    }
    progress(have);
    try {
      if (have < size) {
        const blob = await downloadFile({ repo: repo.name, revision: repo.revision, path: entry.path, hubUrl: opts.hubUrl, accessToken: opts.accessToken, xet: false });
        if (!blob) throw new HubPullError(`${entry.path} is not in ${repo.name}@${repo.revision}`);
        if (blob.size !== size) throw new HubPullError(`${entry.path} is ${blob.size} bytes on the Hub, its tree says ${size}`);
        // A ranged GET from the first missing byte: the Hub (and its CDN) answer 206 with the rest.
        // Each chunk is on disk before the next is read, so a connection that drops keeps every
        // byte read before it for the next attempt.
        const reader = (blob.slice(have).stream() as ReadableStream<Uint8Array>).getReader();
        const file = await open(part, 'a');
        try {
          let written = have;
          for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
            await file.write(chunk.value);
            written += chunk.value.length;
            fetched += chunk.value.length;
            progress(written);
          }
        } finally {
          await file.close();
          reader.releaseLock();
        }
      }
      const got = await sizeOf(part);
      if (got !== size) throw new HubPullError(`${entry.path}: got ${got} of ${size} bytes`);
      await checkHash(part, entry);
      await rename(part, target);
      return fetched;
    } catch (error) {
      if (attempt >= attempts || error instanceof ModelPackageError) {
        throw new HubPullError(`downloading ${entry.path} failed after ${attempt} attempts (${(error as Error).message}); run the pull again to resume`, { cause: error });
      }
    }
  }
}

/** Pulls a repo (or one file of it) and turns it into a package at `opts.outDir`. */
export async function pullModel(opts: PullOptions): Promise<PullResult> {
  const repo = parseRepo(opts.repo);
  const entries: ListFileEntry[] = [];
  try {
    for await (const entry of listFiles({ repo: repo.name, revision: repo.revision, recursive: true, hubUrl: opts.hubUrl, accessToken: opts.accessToken })) {
      if (entry.type === 'file') entries.push(entry);
    }
  } catch (error) {
    throw new HubPullError(`cannot list ${repo.name}@${repo.revision} on the Hub: ${(error as Error).message}`, { cause: error });
  }
  const gguf = opts.file ? opts.file.toLowerCase().endsWith('.gguf') : !entries.some((e) => /(^|\/)model[^/]*\.onnx$/.test(e.path)) && entries.some((e) => e.path.toLowerCase().endsWith('.gguf'));
  const chosen = gguf ? { files: [chooseGguf(entries, opts.file)], onnxFile: undefined } : chooseOnnxFiles(entries, opts);
  const downloadDir = path.resolve(opts.downloadDir ?? `${opts.outDir}.download`);
  const totalBytes = chosen.files.reduce((sum, e) => sum + (e.lfs?.size ?? e.size), 0);
  const done = new Map<string, number>();
  let downloadedBytes = 0;
  for (const entry of chosen.files) {
    downloadedBytes += await downloadOne(entry, path.join(downloadDir, entry.path), opts, repo, (bytes) => {
      done.set(entry.path, bytes);
      opts.onProgress?.({ downloadedBytes: [...done.values()].reduce((a, b) => a + b, 0), totalBytes, file: entry.path });
    });
  }
  const name = repo.name.split('/')[1]!.toLowerCase();
  let manifest: ModelManifest;
  if (gguf) {
    ({ manifest } = await importGgufFile(path.join(downloadDir, chosen.files[0]!.path), { outDir: opts.outDir, name, version: repo.revision === 'main' ? '1' : repo.revision }));
    await rm(downloadDir, { recursive: true, force: true });
  } else {
    manifest = await packModelFolder(downloadDir, { name, version: repo.revision === 'main' ? '1' : repo.revision, onnxFile: chosen.onnxFile });
    await rename(downloadDir, path.resolve(opts.outDir));
  }
  return { manifest, kind: gguf ? 'gguf' : 'onnx', files: chosen.files.map((e) => e.path), downloadedBytes };
}

/** The package a pull of `repo` made earlier under `outDir`, if complete. */
export async function pulledPackage(outDir: string): Promise<ModelManifest | undefined> {
  try {
    return await readManifest(outDir);
  } catch {
    return undefined;
  }
}
