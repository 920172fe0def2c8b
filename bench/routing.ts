// Routing benchmark (npm run bench:routing): what a route decision and a fallback chain add to a
// request in the gateway process, beside the same backend called directly. The backend answers
// at once from memory (no model, no network), so the numbers are routing's own cost: evaluating
// the rules (prompt-token count, max_tokens, a regex, a word list, a header), preparing the chain,
// and relaying each token through it. Writes bench/results/routing.json and prints a table.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GenerationInput, GenerationParams, ModelBackend, PrepareContext } from '../src/backends/model-backend.js';
import { promptTokenBound } from '../src/backends/upstream-backend.js';
import type { GenerationEvent } from '../src/engine/index.js';
import { CircuitBreakers, withRouting, wordPattern, type RouteTable } from '../src/routing/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ITERATIONS = 20_000;
const TOKENS = 64;

/** A backend that answers TOKENS tokens from memory. */
function instantBackend(id: string): ModelBackend {
  return {
    id,
    version: `${id}@1`,
    price: { inputMicrosPerMillionTokens: 100_000, outputMicrosPerMillionTokens: 400_000 },
    created: 0,
    ownedBy: 'bench',
    contextLength: 32_768,
    continuesChat: true,
    async prepare(input: GenerationInput, params: GenerationParams) {
      const promptTokens = promptTokenBound(input);
      const maxTokens = params.maxTokens ?? TOKENS;
      return {
        promptTokens,
        maxTokens,
        async *run(): AsyncGenerator<GenerationEvent> {
          for (let i = 0; i < TOKENS; i++) yield { type: 'token', tokenId: i, text: 'tok ' };
          yield { type: 'finish', finishReason: 'stop', text: '', usage: { promptTokens, completionTokens: TOKENS } };
        },
      };
    },
  };
}

const table: RouteTable = {
  defaultTarget: 'small',
  rules: [
    { name: 'long', target: 'large', when: { kind: 'prompt_tokens', over: 1500 } },
    { name: 'long answers', target: 'large', when: { kind: 'max_tokens', over: 1024 } },
    { name: 'math', target: 'large', when: { kind: 'matches', pattern: /\b(integral|derivative|prove)s?\b/iu } },
    { name: 'legal', target: 'large', when: { kind: 'words', pattern: wordPattern(['contract', 'liability', 'indemnity', 'warranty']) } },
    { name: 'asked', target: 'large', when: { kind: 'header', value: 'heavy' } },
  ],
};

const input: GenerationInput = {
  kind: 'chat',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. '.repeat(8) },
    { role: 'user', content: 'Tell me about the weather in spring and what to plant in a small garden. '.repeat(6) },
  ],
};
const params: GenerationParams = { maxTokens: 128 };
const context: PrepareContext = { headers: new Headers({ 'content-type': 'application/json' }), report: () => undefined };

async function once(backend: ModelBackend): Promise<number> {
  const start = performance.now();
  const prepared = await backend.prepare(input, params, context);
  for await (const _event of prepared.run(new AbortController().signal));
  return performance.now() - start;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function measure(backend: ModelBackend) {
  for (let i = 0; i < 2_000; i++) await once(backend); // warm-up (JIT)
  const times: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) times.push(await once(backend));
  times.sort((x, y) => x - y);
  return { p50Us: percentile(times, 0.5) * 1000, p99Us: percentile(times, 0.99) * 1000 };
}

const plain = new Map([instantBackend('small'), instantBackend('large')].map((b) => [b.id, b]));
const routed = withRouting(plain, {
  routes: new Map([['assistant', table]]),
  fallbacks: new Map([['small', ['large']]]),
  firstTokenTimeoutMs: 30_000,
  stallTimeoutMs: 15_000,
  breakers: new CircuitBreakers({ failureThreshold: 3, cooldownMs: 30_000 }),
});

const cases = [
  { name: 'direct (the backend alone)', backend: plain.get('small')! },
  { name: 'fallback chain (small → large)', backend: routed.get('small')! },
  { name: 'route (5 rules) + fallback chain', backend: routed.get('assistant')! },
];
const rows: { name: string; p50Us: number; p99Us: number; addedP50Us: number }[] = [];
let directP50 = 0;
for (const { name, backend } of cases) {
  const result = await measure(backend);
  if (rows.length === 0) directP50 = result.p50Us;
  rows.push({ name, ...result, addedP50Us: result.p50Us - directP50 });
}

await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(
  path.join(ROOT, 'bench', 'results', 'routing.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, iterations: ITERATIONS, tokensPerRequest: TOKENS, rows }, null, 2) + '\n',
);
const fmt = (us: number) => us.toFixed(1);
console.log(
  [
    `| case (${TOKENS} tokens per request) | p50 µs | p99 µs | added p50 µs |`,
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.p50Us)} | ${fmt(r.p99Us)} | ${fmt(r.addedP50Us)} |`),
  ].join('\n'),
);
