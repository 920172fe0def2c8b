// Starts the real gateway for a test file: DynamoDB Local table, a real API key, the tiny demo
// model in onnxruntime, the Node adapter on 127.0.0.1 and a free port; log lines are captured.
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { AdmissionControl, authenticateApiKey, createApiKey, type CreateApiKeyInput } from '../../src/admission/index.js';
import { serveNode } from '../../src/adapters/node-server.js';
import { engineBackend } from '../../src/backends/engine-backend.js';
import type { ModelBackend } from '../../src/backends/model-backend.js';
import { ResponseCache, type CacheConfig } from '../../src/cache/index.js';
import { DEFAULT_PLANS, type PlanConfig } from '../../src/config/index.js';
import { loadModel } from '../../src/engine/index.js';
import { createGateway, type GatewayOptions } from '../../src/gateway.js';
import type { Store } from '../../src/store/index.js';
import { createTestStore } from '../setup/store.js';
import { ensureTestModel } from './test-models.js';

export const TEST_MODEL_ID = 'aigw-demo';

export interface TestGatewayOptions {
  maxRequestBytes?: number;
  logPrompts?: boolean;
  plans?: Record<string, PlanConfig>;
  /** The key the test uses; defaults to the free plan. */
  key?: Omit<CreateApiKeyInput, 'name'>;
  leaseSeconds?: number;
  cache?: CacheConfig | false;
  allowedOrigins?: string[];
  modelCaps?: Map<string, number>;
  /** Wraps the model backend, e.g. to observe it or give it a price. */
  wrapBackend?: (backend: ModelBackend) => ModelBackend;
  /** A store to use instead of a fresh table (e.g. one whose endpoint is down). */
  store?: Store;
  /** A store for admission and the cache only (keys still checked in the test's table). */
  admissionStore?: Store;
  failOpen?: boolean;
  metrics?: Metrics;
  budgetAlertPercents?: number[];
  guardrails?: GatewayOptions['guardrails'];
  onRequestFinished?: GatewayOptions['onRequestFinished'];
}

export interface TestGateway {
  url: string;
  apiKey: string;
  store: Store;
  /** Every request log line written so far. */
  logs: Record<string, unknown>[];
  /** Another key on the same gateway. */
  createKey(input?: Omit<CreateApiKeyInput, 'name'>): Promise<string>;
  close(): Promise<void>;
}

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const store = await createTestStore('gateway');
  const createKey = async (input: Omit<CreateApiKeyInput, 'name'> = {}) => (await createApiKey(store, { name: 'e2e', ...input })).key;
  const apiKey = await createKey(options.key);
  const model = await loadModel(await ensureTestModel({ layout: 'optimum', precision: 'int4' }), { threads: 1 });
  const backend = engineBackend(model, TEST_MODEL_ID, { batchSize: 64 });
  const logs: Record<string, unknown>[] = [];
  const requestStore = options.store ?? store;
  const limitsStore = options.admissionStore ?? requestStore;
  const gateway = createGateway({
    backends: new Map([[TEST_MODEL_ID, options.wrapBackend ? options.wrapBackend(backend) : backend]]),
    defaultModel: TEST_MODEL_ID,
    authenticate: (presented) => authenticateApiKey(requestStore, presented),
    logger: { info: (message, ...extra) => logs.push(Object.assign({ message }, ...extra)) },
    maxRequestBytes: options.maxRequestBytes ?? 1024 * 1024,
    logPrompts: options.logPrompts ?? false,
    admission: {
      control: new AdmissionControl(limitsStore, { leaseSeconds: options.leaseSeconds ?? 60 }),
      plans: options.plans ?? DEFAULT_PLANS,
      failOpen: options.failOpen ?? false,
      modelCaps: options.modelCaps ?? new Map(),
      budgetAlertPercents: options.budgetAlertPercents,
    },
    cache: options.cache === false ? undefined : { cache: new ResponseCache(limitsStore, {}), config: options.cache ?? { ttlSeconds: 3600, shared: false } },
    allowedOrigins: options.allowedOrigins ?? [],
    metrics: options.metrics,
    guardrails: options.guardrails,
    onRequestFinished: options.onRequestFinished,
  });
  const server = await serveNode(gateway, { host: '127.0.0.1', port: 0 });
  return { url: server.url, apiKey, store, logs, createKey, close: () => server.close(1000) };
}
