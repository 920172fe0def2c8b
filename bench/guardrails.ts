// Guardrails benchmark (npm run bench:guardrails): what 10,000 word-list terms plus the four PII
// detectors add (1) to time to first token: checking a prompt and filtering the first token,
// (2) per output token, over a 20,000-character answer streamed in 4-character tokens, and
// (3) to real decoding: the demo model in onnxruntime, alternating runs with and without the
// filter in one process. Writes bench/results/guardrails.json and prints markdown tables.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineBackend } from '../src/backends/engine-backend.js';
import { ensureDemoModel } from '../src/cli/demo-model.js';
import { CONFIG_DEFAULTS } from '../src/config/index.js';
import { loadModel } from '../src/engine/index.js';
import {
  compileGuardrails,
  emailDetector,
  filterText,
  guardedBackend,
  GuardrailStream,
  ibanDetector,
  paymentCardDetector,
  phoneDetector,
  type GuardrailSet,
} from '../src/guardrails/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TERMS = 10_000;

/** Deterministic pseudo-random numbers (mulberry32), so every run measures the same text. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = random(7);
const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)]!;
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const CJK = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年';
const word = (min: number, max: number) => Array.from({ length: min + Math.floor(rand() * (max - min + 1)) }, () => pick([...LETTERS])).join('');

// 10,000 terms: Latin words and two-word phrases, and some CJK terms (no word boundaries).
const terms = Array.from({ length: TERMS }, (_, i) => (i % 10 === 0 ? Array.from({ length: 2 + (i % 3) }, () => pick([...CJK])).join('') : i % 4 === 0 ? `${word(3, 8)} ${word(3, 8)}` : word(4, 12)));
// An answer of ordinary words (a few terms among them), numbers and punctuation.
const vocabulary = Array.from({ length: 2_000 }, () => word(1, 9));
function prose(chars: number): string {
  let text = '';
  while (text.length < chars) {
    const r = rand();
    text += r < 0.003 ? pick(terms) : r < 0.01 ? String(Math.floor(rand() * 1e6)) : pick(vocabulary);
    text += rand() < 0.1 ? '. ' : ' ';
  }
  return text.slice(0, chars);
}

function sets(): Record<string, GuardrailSet> {
  const words = { name: 'words', action: 'mask' as const, mask: '[x]', terms };
  const pii = [
    { name: 'email', action: 'mask' as const, mask: '[email]', detector: emailDetector },
    { name: 'phone', action: 'mask' as const, mask: '[phone]', detector: phoneDetector },
    { name: 'card', action: 'mask' as const, mask: '[card]', detector: paymentCardDetector },
    { name: 'iban', action: 'mask' as const, mask: '[iban]', detector: ibanDetector },
  ];
  return { '10,000 terms': compileGuardrails([words]), '10,000 terms + 4 PII detectors': compileGuardrails([words, ...pii]) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const tokensOf = (text: string, size = 4) => Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));

function ttftCost(set: GuardrailSet, prompt: string, firstToken: string): number {
  const samples: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    filterText(set, prompt);
    new GuardrailStream(set).push(firstToken);
    samples.push(performance.now() - start);
  }
  return median(samples);
}

function perTokenCost(set: GuardrailSet, tokens: string[]): { microsPerToken: number; meanHeldChars: number } {
  const samples: number[] = [];
  let held = 0;
  for (let round = 0; round < 7; round++) {
    const stream = new GuardrailStream(set);
    const start = performance.now();
    for (const token of tokens) {
      stream.push(token);
      if (round === 0) held += stream.heldBack;
    }
    stream.end();
    samples.push(((performance.now() - start) * 1000) / tokens.length);
  }
  return { microsPerToken: median(samples), meanHeldChars: held / tokens.length };
}

async function decodeComparison(set: GuardrailSet) {
  await ensureDemoModel(CONFIG_DEFAULTS);
  const model = await loadModel(path.resolve(ROOT, CONFIG_DEFAULTS.model.path), { threads: 1 });
  const plain = engineBackend(model, 'aigw-tiny', {});
  const guarded = guardedBackend(plain, { id: 'bench', input: set, output: set }, { onHits: () => undefined });
  const run = async (backend: typeof plain) => {
    const prepared = await backend.prepare({ kind: 'chat', messages: [{ role: 'user', content: prose(400) }] }, { temperature: 0, maxTokens: 256 });
    const start = performance.now();
    let tokens = 0;
    for await (const event of prepared.run(new AbortController().signal)) if (event.type === 'token') tokens++;
    return (performance.now() - start) / tokens;
  };
  await run(plain);
  await run(guarded);
  const plainMs: number[] = [];
  const guardedMs: number[] = [];
  for (let i = 0; i < 9; i++) {
    plainMs.push(await run(plain));
    guardedMs.push(await run(guarded));
  }
  return { plainMsPerToken: median(plainMs), guardedMsPerToken: median(guardedMs) };
}

async function main(): Promise<void> {
  const compiled: Record<string, { compileMs: number; set: GuardrailSet }> = {};
  for (const [name] of Object.entries(sets())) {
    const start = performance.now();
    const set = sets()[name]!;
    compiled[name] = { compileMs: performance.now() - start, set };
  }
  const prompt = prose(2_000);
  const answer = prose(20_000);
  const tokens = tokensOf(answer);
  const rows = Object.entries(compiled).map(([name, { compileMs, set }]) => {
    ttftCost(set, prompt, tokens[0]!);
    perTokenCost(set, tokens.slice(0, 500));
    return { rules: name, compileMs, ttftAddedMs: ttftCost(set, prompt, tokens[0]!), ...perTokenCost(set, tokens) };
  });
  const decode = await decodeComparison(compiled['10,000 terms + 4 PII detectors']!.set);
  // The 0.5B-shaped bench model's decode step from bench/results/engine.json's README table (~28 ms/token).
  const REFERENCE_MS_PER_TOKEN = 28;
  const result = {
    machine: 'shared 2-core machine, other engineers running tests: numbers are noisy',
    promptChars: prompt.length,
    answerChars: answer.length,
    tokenChars: 4,
    rows: rows.map((r) => ({ ...r, shareOfReferenceDecode: (r.microsPerToken / 1000 / REFERENCE_MS_PER_TOKEN) * 100 })),
    decode: { ...decode, overheadPercent: ((decode.guardedMsPerToken - decode.plainMsPerToken) / decode.plainMsPerToken) * 100 },
  };
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(path.join(ROOT, 'bench', 'results', 'guardrails.json'), `${JSON.stringify(result, null, 2)}\n`);

  const f = (n: number, d = 2) => n.toFixed(d);
  console.log('| rules | compile ms (once, at start) | added to TTFT ms (2,000-char prompt + first token) | µs per output token | % of a 28 ms/token decode | mean chars held back |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of result.rows) console.log(`| ${r.rules} | ${f(r.compileMs, 0)} | ${f(r.ttftAddedMs, 3)} | ${f(r.microsPerToken)} | ${f(r.shareOfReferenceDecode, 3)} % | ${f(r.meanHeldChars, 1)} |`);
  console.log('');
  console.log('| demo model (tiny, 1 thread), 256 tokens greedy | ms/token without | ms/token with 10,000 terms + PII | overhead |');
  console.log('|---|---:|---:|---:|');
  console.log(`| median of 9 alternating runs | ${f(decode.plainMsPerToken, 3)} | ${f(decode.guardedMsPerToken, 3)} | ${f(result.decode.overheadPercent, 1)} % |`);
}

await main();
