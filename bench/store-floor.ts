// The store's floor for bench/gateway.ts: a server that makes, per request, the DynamoDB calls
// aigw with everything on makes, with the same client, and nothing else. Before answering: a
// conditional UpdateItem on the key's counters beside a GetItem of a cache entry that misses; then
// the upstream call; after answering: a settlement UpdateItem, the cache PutItem and the usage
// UpdateItem. What it adds over the upstream alone is what this DynamoDB Local costs any gateway
// that keeps those books exactly; the rest of what aigw adds is aigw's own work.
// argv[2]: the instant upstream's URL. Prints one JSON line when ready: { url }.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDynamoDbClient, ensureTable, tableSchema } from '../src/store/index.js';

const upstreamUrl = process.argv[2]!;
const { AIGW_BENCH_DYNAMODB: endpoint, AIGW_BENCH_KEY_ID: accessKeyId, AIGW_BENCH_SECRET: secretAccessKey } = process.env;
const client = createDynamoDbClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! } });
const schema = tableSchema('aigw-bench-floor');
await ensureTable(client, schema);
const TableName = schema.tableName;
const key = (pk: string) => ({ [schema.partitionKey.name]: pk, [schema.sortKey.name]: 'S' });

const minute = () => `m${Math.floor(Date.now() / 60_000)}`;
const admit = (hold: string) =>
  client.send(
    new UpdateCommand({
      TableName,
      Key: key('LIMITS#bench'),
      UpdateExpression: 'ADD #rpm :one, #conc :one, #usd :usd SET #hold = :hold',
      ConditionExpression: '(attribute_not_exists(#rpm) OR #rpm <= :room) AND (attribute_not_exists(#conc) OR #conc <= :room)',
      ExpressionAttributeNames: { '#rpm': `rpm_${minute()}`, '#conc': 'conc', '#usd': 'usd_d', '#hold': `h_${hold}` },
      ExpressionAttributeValues: { ':one': 1, ':usd': 10, ':room': 1_000_000_000, ':hold': { exp: Math.floor(Date.now() / 1000) + 300, usd: 10 } },
    }),
  );
const settle = (hold: string) =>
  client.send(
    new UpdateCommand({
      TableName,
      Key: key('LIMITS#bench'),
      UpdateExpression: 'ADD #conc :minus, #usd :usd REMOVE #hold',
      ConditionExpression: 'attribute_exists(#hold)',
      ExpressionAttributeNames: { '#conc': 'conc', '#usd': 'usd_d', '#hold': `h_${hold}` },
      ExpressionAttributeValues: { ':minus': -1, ':usd': -5 },
    }),
  );

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    try {
      const body = Buffer.concat(chunks);
      const hold = randomUUID();
      const cacheKey = key(`CACHE#${randomUUID()}`);
      await Promise.all([admit(hold), client.send(new GetCommand({ TableName, Key: cacheKey }))]);
      const upstream = await fetch(`${upstreamUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const answer = await upstream.text();
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(answer);
      await Promise.all([
        settle(hold),
        client.send(new PutCommand({ TableName, Item: { ...cacheKey, body: answer, ttl: Math.floor(Date.now() / 1000) + 3600 } })),
        client.send(
          new UpdateCommand({
            TableName,
            Key: key(`USAGE#bench#${new Date().toISOString().slice(0, 10)}`),
            UpdateExpression: 'ADD requests :one, promptTokens :p, completionTokens :c, costMicros :usd',
            ExpressionAttributeValues: { ':one': 1, ':p': 8, ':c': 3, ':usd': 5 },
          }),
        ),
      ]);
    } catch (error) {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
