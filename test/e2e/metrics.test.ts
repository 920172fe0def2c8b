// EMF metrics and budget alerts from the real gateway: the JSON lines Powertools writes (what
// CloudWatch turns into metrics in Lambda) are captured and asserted.
import { expect, it } from 'vitest';
import { GATEWAY_SERVICE_NAME } from '../../src/telemetry/metric-names.js';
import type { ModelBackend } from '../../src/backends/model-backend.js';
import { capturedMetrics } from '../helpers/captured-metrics.js';
import { startTestGateway, TEST_MODEL_ID, type TestGateway } from '../helpers/test-gateway.js';

const priced = (backend: ModelBackend): ModelBackend => ({
  ...backend,
  price: { inputMicrosPerMillionTokens: 1_000_000, outputMicrosPerMillionTokens: 1_000_000 },
});

let gw: TestGateway;

it('emits request metrics, rejections by reason, and each budget threshold crossing once', async () => {
  const { metrics, lines } = capturedMetrics();
  gw = await startTestGateway({
    plans: { metered: { budget_usd_per_day: 400, requests_per_minute: 1000 } },
    key: { plan: 'metered' },
    wrapBackend: priced,
    metrics,
    budgetAlertPercents: [50, 80],
  });
  const chat = () =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json', 'x-aigw-skip-cache': 'true' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 20, ignore: 1 }),
    });
  const statuses: number[] = [];
  // Concurrent waves until the budget refuses: crossings happen while requests race.
  for (let wave = 0; wave < 10 && !statuses.includes(429); wave++) {
    statuses.push(...(await Promise.all(Array.from({ length: 6 }, chat))).map((r) => r.status));
  }
  expect(statuses).toContain(200);
  expect(statuses).toContain(429);
  // Budget alerts are checked after the responses; closing the server waits for that work.
  await gw.close();

  const perVersion = (l: (typeof lines)[number]) => l._aws.CloudWatchMetrics[0]!.Dimensions[0]!.includes('ModelVersion');
  // Gateway-wide lines; each model version also gets a line of its own (ModelVersion), checked below.
  const named = (name: string) => lines.filter((l) => !perVersion(l) && l._aws.CloudWatchMetrics[0]!.Metrics.some((m) => m.Name === name));
  const requests = named('Requests');
  expect(requests).toHaveLength(statuses.length);
  const versionLines = lines.filter(perVersion);
  expect(versionLines).toHaveLength(statuses.length);
  for (const line of versionLines) expect(line.ModelVersion).toMatch(/@/);
  for (const line of requests) {
    expect(line._aws.CloudWatchMetrics[0]!.Namespace).toBe('aigw');
    expect(line.service).toBe(GATEWAY_SERVICE_NAME);
    expect(line.LatencyMs).toEqual(expect.any(Number));
  }
  const served = requests.filter((l) => typeof l.CostMicroUsd === 'number');
  expect(served).toHaveLength(statuses.filter((s) => s === 200).length);
  for (const line of served) {
    expect(line.PromptTokens).toEqual(expect.any(Number));
    expect(line.TtftMs).toEqual(expect.any(Number));
  }
  const rejections = named('Rejections');
  expect(rejections).toHaveLength(statuses.filter((s) => s === 429).length);
  for (const line of rejections) {
    expect(line.Reason).toBe('budget_exceeded');
    expect(line._aws.CloudWatchMetrics[0]!.Dimensions[0]).toEqual(expect.arrayContaining(['Reason']));
  }
  const crossings = named('KeyBudgetThresholdCrossed').map((l) => l.Percent);
  expect(crossings.sort()).toEqual(['50', '80']);
  const audit = gw.logs.filter((l) => l.message === 'budget_threshold_crossed');
  expect(audit.map((l) => l.percent).sort()).toEqual([50, 80]);
  expect(audit[0]).toMatchObject({ period: 'day', budgetMicros: 400, keyId: expect.stringMatching(/^key_/) });
});
