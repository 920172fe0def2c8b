// aigw under load for bench/gateway.ts, in its own process so the load generator does not share
// its event loop, in front of the instant upstream (argv[3]) through the upstream backend.
// Mode "bare": keys, admission and cache off. Mode "full": keys, rate limits, concurrency cap,
// budget and the response cache on, against the DynamoDB Local at AIGW_BENCH_DYNAMODB; every
// DynamoDB call is counted on the client, and a line "calls" on stdin prints { calls }.
// Prints one JSON line when ready: { url, apiKey }.
import { createInterface } from 'node:readline';
import { AdmissionControl, authenticateApiKey, createApiKey } from '../src/admission/index.js';
import { serveNode } from '../src/adapters/node-server.js';
import { upstreamBackend } from '../src/backends/upstream-backend.js';
import { ResponseCache } from '../src/cache/index.js';
import { createGateway } from '../src/gateway.js';
import { createDynamoDbClient, ensureTable, tableSchema } from '../src/store/index.js';

const [mode, upstreamUrl] = process.argv.slice(2) as ['bare' | 'full', string];
// A price and limits that are all set but never reached: every request does all the bookkeeping.
const backend = upstreamBackend({
  id: 'instant',
  version: 'instant@1',
  baseUrl: upstreamUrl,
  contextLength: 4096,
  defaultMaxTokens: 16,
  price: { inputMicrosPerMillionTokens: 100_000, outputMicrosPerMillionTokens: 400_000 },
});
const plans = {
  bench: {
    requests_per_minute: 10_000_000,
    tokens_per_minute: 1_000_000_000,
    requests_per_month: 1_000_000_000,
    max_concurrent_requests: 1000,
    budget_usd_per_day: 1_000_000_000_000,
    budget_usd_per_month: 1_000_000_000_000,
  },
};
const silent = { info: () => undefined };

let apiKey = '';
let calls = 0;
let gatewayOptions: Parameters<typeof createGateway>[0] = {
  backends: new Map([[backend.id, backend]]),
  defaultModel: backend.id,
  logger: silent,
  maxRequestBytes: 1 << 20,
  logPrompts: false,
};
if (mode === 'full') {
  const { AIGW_BENCH_DYNAMODB: endpoint, AIGW_BENCH_KEY_ID: accessKeyId, AIGW_BENCH_SECRET: secretAccessKey } = process.env;
  const client = createDynamoDbClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! } });
  const schema = tableSchema('aigw-bench');
  await ensureTable(client, schema);
  const send = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = (...args) => {
    calls++;
    return send(...args);
  };
  const store = { client, tableName: schema.tableName };
  apiKey = (await createApiKey(store, { name: 'bench', plan: 'bench' })).key;
  gatewayOptions = {
    ...gatewayOptions,
    authenticate: (presented) => authenticateApiKey(store, presented),
    admission: { control: new AdmissionControl(store, { leaseSeconds: 300 }), plans, failOpen: false, modelCaps: new Map() },
    cache: { cache: new ResponseCache(store, {}), config: { ttlSeconds: 3600, shared: false } },
  };
}
const server = await serveNode(createGateway(gatewayOptions), { host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url: server.url, apiKey })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'calls') process.stdout.write(`${JSON.stringify({ calls })}\n`);
}
await server.close(100);
