// What a call around CloudFront costs (npm run bench:refused): functions/gateway.ts, as Lambda runs
// it (the awslambda shim), answering a direct function-URL call without the origin secret header,
// and with a wrong one (the secret is read once, then cached). Beside it, the floor: the same
// streaming adapter answering 403 without any check. Lambda bills the handler's
// duration rounded up to 1 ms plus the request fee; results go to bench/results/refused-call.json.
import '../test/helpers/awslambda-shim.js';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GATEWAY_ENV } from '../infra/function-env.js';
import { ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from '../infra/origin-protection.js';
import { streamingHandler, type StreamingLambdaHandler } from '../src/adapters/lambda-streaming.js';
import { functionUrlEvent, invokeStreaming } from '../test/helpers/awslambda-shim.js';
import { startSecretsManagerServer } from '../test/helpers/secrets-manager-server.js';

const RESULTS = fileURLToPath(new URL('./results/refused-call.json', import.meta.url));
const WARMUP = 300;
const ROUNDS = 10;
const PER_ROUND = 300;
// Lambda's prices in us-east-1 for arm64 (x86_64 costs 25% more per GB-second).
const REQUEST_USD_PER_MILLION = 0.2;
const ARM64_USD_PER_GB_SECOND = 0.0000133334;
const GATEWAY_MEMORY_GB = 1; // infra/regional-stack.ts: memorySize 1024

const secrets = await startSecretsManagerServer();
secrets.setSecret(ORIGIN_SECRET_NAME, { AWSCURRENT: 'the-real-origin-secret' });
Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
  // Never contacted: a refused call stops before DynamoDB.
  AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
  [GATEWAY_ENV.tableName]: 'aigw',
  [GATEWAY_ENV.originSecretId]: ORIGIN_SECRET_NAME,
  POWERTOOLS_LOG_LEVEL: 'CRITICAL',
  AIGW_CONFIG: '[monitoring]\nmetrics = "off"\n',
});
const { handler: gateway } = (await import('../functions/gateway.js')) as { handler: StreamingLambdaHandler };

// The floor: the same streaming adapter around a gateway that answers 403 without any check.
const FORBIDDEN = '{"error":{"message":"forbidden","type":"invalid_request_error","param":null,"code":"origin_forbidden"}}';
const floor = streamingHandler(async () => new Response(FORBIDDEN, { status: 403, headers: { 'content-type': 'application/json' } }));

const noHeader = functionUrlEvent('chat-completion', { API_KEY: 'sk-anything' });
const wrongHeader = functionUrlEvent('chat-completion', { API_KEY: 'sk-anything' });
wrongHeader.headers[ORIGIN_SECRET_HEADER] = 'a-guessed-secret';

const cases = [
  { name: 'gateway, no origin secret header', handler: gateway, event: noHeader },
  { name: 'gateway, wrong origin secret', handler: gateway, event: wrongHeader },
  { name: 'floor: the adapter answering 403 unchecked', handler: floor, event: noHeader },
];

async function invokeOnce(handler: StreamingLambdaHandler, event: typeof noHeader): Promise<number> {
  const start = performance.now();
  const result = await invokeStreaming(handler, event);
  const elapsed = performance.now() - start;
  if (result.prelude?.statusCode !== 403) throw new Error(`expected 403, got ${result.prelude?.statusCode} (${String(result.error)})`);
  return elapsed;
}

for (const each of cases) for (let i = 0; i < WARMUP; i += 1) await invokeOnce(each.handler, each.event);
const samples = new Map(cases.map((each) => [each.name, [] as number[]]));
// Interleaved rounds, so drift of a shared machine hits every case alike.
for (let round = 0; round < ROUNDS; round += 1) {
  for (const each of cases) {
    for (let i = 0; i < PER_ROUND; i += 1) samples.get(each.name)!.push(await invokeOnce(each.handler, each.event));
  }
}
await secrets.stop();

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A million invocations each lasting `ms`: the request fee plus the duration, billed rounded up to 1 ms. */
function usdPerMillion(ms: number): number {
  const billedSeconds = Math.max(1, Math.ceil(ms)) / 1000;
  return Number((REQUEST_USD_PER_MILLION + 1e6 * GATEWAY_MEMORY_GB * billedSeconds * ARM64_USD_PER_GB_SECOND).toFixed(4));
}

const rows = cases.map((each) => {
  const sorted = [...samples.get(each.name)!].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  const p50 = quantile(sorted, 0.5);
  const p99 = quantile(sorted, 0.99);
  return {
    case: each.name,
    invocations: sorted.length,
    p50Ms: Number(p50.toFixed(3)),
    p99Ms: Number(p99.toFixed(3)),
    meanMs: Number(mean.toFixed(3)),
    usdPerMillionAtP50: usdPerMillion(p50),
    usdPerMillionAtP99: usdPerMillion(p99),
  };
});

await mkdir(path.dirname(RESULTS), { recursive: true });
await writeFile(
  RESULTS,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, memoryGb: GATEWAY_MEMORY_GB, rows }, null, 2)}\n`,
);
console.log('| case | invocations | p50 ms | p99 ms | mean ms | USD per million at p50 | USD per million at p99 |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  console.log(`| ${row.case} | ${row.invocations} | ${row.p50Ms} | ${row.p99Ms} | ${row.meanMs} | ${row.usdPerMillionAtP50} | ${row.usdPerMillionAtP99} |`);
}
