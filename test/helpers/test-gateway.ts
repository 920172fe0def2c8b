// Starts the real gateway for a test file: DynamoDB Local table, a real API key, the tiny demo
// model in onnxruntime, the Node adapter on 127.0.0.1 and a free port; log lines are captured.
import { authenticateApiKey, createApiKey } from '../../src/admission/index.js';
import { serveNode } from '../../src/adapters/node-server.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway } from '../../src/gateway.js';
import type { Store } from '../../src/store/index.js';
import { createTestStore } from '../setup/store.js';
import { ensureTestModel } from './test-models.js';

export const TEST_MODEL_ID = 'aigw-demo';

export interface TestGateway {
  url: string;
  apiKey: string;
  store: Store;
  /** Every request log line written so far. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startTestGateway(options: { maxRequestBytes?: number; logPrompts?: boolean } = {}): Promise<TestGateway> {
  const store = await createTestStore('gateway');
  const { key: apiKey } = await createApiKey(store, { name: 'e2e' });
  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  const logs: Record<string, unknown>[] = [];
  const gateway = createGateway({
    backends: new Map([[TEST_MODEL_ID, engineBackend(model, TEST_MODEL_ID)]]),
    defaultModel: TEST_MODEL_ID,
    authenticate: (presented) => authenticateApiKey(store, presented),
    logger: { info: (message, ...extra) => logs.push(Object.assign({ message }, ...extra)) },
    maxRequestBytes: options.maxRequestBytes ?? 1024 * 1024,
    logPrompts: options.logPrompts ?? false,
  });
  const server = await serveNode(gateway, { host: '127.0.0.1', port: 0 });
  return { url: server.url, apiKey, store, logs, close: () => server.close(1000) };
}
