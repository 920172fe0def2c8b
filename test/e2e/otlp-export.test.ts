// OpenTelemetry export from the real gateway to a real OTLP/HTTP receiver on loopback: the
// receiver decodes each request (OTLP's JSON encoding) and the spans and metrics are checked by
// their GenAI semantic-convention names and values against the responses the client got.
import { createServer, type Server } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { otlpTelemetry, type OtlpTelemetry } from '../../src/telemetry/index.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values: OtlpAttribute['value'][] } };
}

const received: { path: string; contentType: string; body: any }[] = [];
let receiver: Server;
let endpoint: string;
let otlp: OtlpTelemetry;
let gw: TestGateway;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address() as { port: number };
  endpoint = `http://127.0.0.1:${address.port}`;
  otlp = otlpTelemetry({ endpoint, serviceName: 'aigw-test', headers: { 'x-tenant': 'e2e' }, exportIntervalMs: 60_000 });
  gw = await startTestGateway({ onRequestFinished: [(line) => otlp.record(line)], key: { plan: 'free' } });
}, 600_000);

afterAll(async () => {
  await gw?.close();
  await otlp?.shutdown();
  receiver?.close();
});

const value = (v: OtlpAttribute['value']): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values.map(value);
const attributes = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, value(a.value)]));

it('exports a GenAI span and metrics for each request, and counts rejections', async () => {
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.apiKey, maxRetries: 0 });
  const reply = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 12, temperature: 0 });
  const stream = await client.chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'Hey' }], max_tokens: 9, stream: true, stream_options: { include_usage: true } });
  let streamedUsage: { prompt_tokens: number; completion_tokens: number } | undefined;
  for await (const chunk of stream) streamedUsage = chunk.usage ?? streamedUsage;
  await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'aigw-wrong', maxRetries: 0 }).models.list().catch(() => undefined);
  // Give waitUntil work (record) a moment to run, then push everything out.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await otlp.flush();

  const traces = received.filter((r) => r.path === '/v1/traces');
  const metrics = received.filter((r) => r.path === '/v1/metrics');
  expect(traces.length).toBeGreaterThan(0);
  expect(metrics.length).toBeGreaterThan(0);
  expect(traces.every((r) => r.contentType.startsWith('application/json'))).toBe(true);

  const resourceSpans = traces.flatMap((r) => r.body.resourceSpans);
  expect(attributes(resourceSpans[0].resource.attributes)['service.name']).toBe('aigw-test');
  const spans = resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans));
  expect(spans).toHaveLength(2);
  const [whole, streamed] = spans.map((s: any) => ({ name: s.name, kind: s.kind, attrs: attributes(s.attributes), start: Number(s.startTimeUnixNano), end: Number(s.endTimeUnixNano) }));
  expect(whole!.name).toBe(`chat ${TEST_MODEL_ID}`);
  expect(whole!.kind).toBe(2); // SPAN_KIND_SERVER
  expect(whole!.end).toBeGreaterThan(whole!.start);
  expect(whole!.attrs).toMatchObject({
    'gen_ai.operation.name': 'chat',
    'gen_ai.request.model': TEST_MODEL_ID,
    'gen_ai.usage.input_tokens': reply.usage!.prompt_tokens,
    'gen_ai.usage.output_tokens': reply.usage!.completion_tokens,
    'gen_ai.response.finish_reasons': [reply.choices[0]!.finish_reason],
    'http.response.status_code': 200,
    'aigw.cache.status': 'MISS',
  });
  expect(streamed!.attrs).toMatchObject({ 'gen_ai.usage.input_tokens': streamedUsage!.prompt_tokens, 'gen_ai.usage.output_tokens': streamedUsage!.completion_tokens });

  const points = new Map<string, any[]>();
  for (const r of metrics) {
    for (const rm of r.body.resourceMetrics) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) points.set(m.name, [...(points.get(m.name) ?? []), ...(m.histogram?.dataPoints ?? m.sum?.dataPoints ?? [])]);
      }
    }
  }
  const tokenUsage = points.get('gen_ai.client.token.usage')!;
  const sumOf = (type: string) => tokenUsage.filter((p) => attributes(p.attributes)['gen_ai.token.type'] === type).reduce((n, p) => n + Number(p.sum), 0);
  expect(sumOf('input')).toBe(reply.usage!.prompt_tokens + streamedUsage!.prompt_tokens);
  expect(sumOf('output')).toBe(reply.usage!.completion_tokens + streamedUsage!.completion_tokens);
  expect(points.get('gen_ai.client.operation.duration')!.reduce((n, p) => n + Number(p.count), 0)).toBe(2);
  expect(points.get('gen_ai.server.time_to_first_token')!.reduce((n, p) => n + Number(p.count), 0)).toBe(2);
  expect(points.get('gen_ai.server.time_per_output_token')!.length).toBeGreaterThan(0);
  expect(points.get('aigw.cache.requests')!.map((p) => attributes(p.attributes)['aigw.cache.status'])).toContain('MISS');
  const rejected = points.get('aigw.rejections')!;
  expect(rejected.map((p) => [attributes(p.attributes)['aigw.rejection.reason'], Number(p.asInt ?? p.asDouble)])).toEqual([['unauthenticated', 1]]);
});
