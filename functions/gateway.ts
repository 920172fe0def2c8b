// Lambda entry point of the regional gateway (function URL, RESPONSE_STREAM, behind CloudFront):
// built once per container from the stack's environment, the same core as `aigw serve`.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GATEWAY_ENV } from '../infra/function-env.js';
import { GATEWAY_SERVICE_NAME, METRIC_NAMESPACE } from '../src/telemetry/metric-names.js';
import { readGatewayConfig, readGatewayStores, readModelFunctions } from '../src/adapters/gateway-function-config.js';
import { streamingHandler } from '../src/adapters/lambda-streaming.js';
import { withOriginSecret } from '../src/adapters/origin-guard.js';
import { originSecretSource } from '../src/adapters/origin-secret-source.js';
import { AdmissionControl, authenticateApiKey } from '../src/admission/index.js';
import { sigv4Signer } from '../src/backends/sigv4-signer.js';
import { upstreamBackend } from '../src/backends/upstream-backend.js';
import { ModelRegistry, createModelResolver, routedModels, upstreamModelBackends } from '../src/routing/index.js';
import { ResponseCache } from '../src/cache/index.js';
import { createGateway } from '../src/gateway.js';
import { gatewayServices } from '../src/gateway-services.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the gateway's stack sets it`);
  return value;
}

const region = required('AWS_REGION');
const config = readGatewayConfig();
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? GATEWAY_SERVICE_NAME;
const logger = new Logger({ serviceName, logLevel: config.monitoring.log_level.toUpperCase() as 'INFO' });
const metrics = config.monitoring.metrics === 'emf' ? new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRIC_NAMESPACE, serviceName }) : undefined;
// Keys and cache read the local replica; admission writes go where AIGW_LIMITS_REGION says.
const stores = readGatewayStores({ region, tableName: required(GATEWAY_ENV.tableName), requestTimeoutMs: config.dynamodb.timeout_ms });

// Model functions sit behind AWS_IAM function URLs: every call is SigV4-signed with the function's role.
const signer = sigv4Signer({ region, service: 'lambda' });
const modelFunctions = readModelFunctions();
const secrets = new SecretsManagerClient({ region, maxAttempts: 2 });
// Each version of a model is its own function: the registry serves `name@version` and the bare
// name (its first listed version); [[models]] upstreams (keys from Secrets Manager) join them.
const registry = new ModelRegistry([
  ...modelFunctions.map((fn) =>
    upstreamBackend({
      id: fn.name,
      version: `${fn.name}@${fn.version}`,
      baseUrl: fn.url,
      price: fn.price,
      contextLength: fn.contextLength,
      defaultMaxTokens: fn.maxTokens,
      signer,
      // A model function is aigw's own core: it takes continue_final_message.
      continuesChat: true,
    }),
  ),
  ...(await upstreamModelBackends(config.models ?? [], { env: process.env, secrets })),
]);
const limitsControl = new AdmissionControl(stores.limits, { leaseSeconds: config.admission.lease_seconds });
// Counted in DynamoDB across every gateway, so the cap holds with or without a reservation; each
// version of a model is capped on its own.
const modelCaps = new Map(modelFunctions.flatMap((fn) => (fn.maxConcurrentRequests ? [[`${fn.name}@${fn.version}`, fn.maxConcurrentRequests] as const] : [])));
const models = routedModels(registry.backends(), modelCaps, config.routing, limitsControl);

// Audit records and OTLP export go to the local replica and the collector; flushed per request
// because Lambda may freeze the process as soon as the response is done.
// Guardrail word lists ship in the code bundle (words = "guardrails/<rule>.txt"): relative paths
// resolve against the code root, never the working directory; a missing one fails the cold start.
const codeRoot = process.env.LAMBDA_TASK_ROOT || dirname(fileURLToPath(import.meta.url));
const services = gatewayServices(config, stores.local, {
  flushEachRequest: true,
  instanceId: `gw-${process.env.AWS_LAMBDA_LOG_STREAM_NAME?.replace(/[^A-Za-z0-9]/g, '').slice(-24) || 'lambda'}`,
  readText: (file) => readFileSync(resolve(codeRoot, file), 'utf8'),
});
services.auditConfiguration().catch((error) => logger.warn('guardrail configuration audit failed', { error: String(error) }));

const gateway = createGateway({
  backends: models.backends,
  // Aliases and canary counters live in the replica admission writes to (the primary's by
  // default), so every region reads the same alias and adds to the same counters.
  aliases: createModelResolver(stores.limits, {
    cacheMs: config.aliases.cache_seconds * 1000,
    logger,
    metrics,
    audit: services.releaseAudit,
  }),
  defaultModel: registry.list()[0]?.id ?? '',
  authenticate: (presented) => authenticateApiKey(stores.local, presented),
  logger,
  metrics,
  maxRequestBytes: config.gateway.max_request_bytes,
  logPrompts: config.gateway.log_prompts,
  admission: {
    control: limitsControl,
    plans: config.plans,
    failOpen: config.admission.fail_open,
    modelCaps: models.modelCaps,
    budgetAlertPercents: config.admission.budget_alert_percents,
  },
  cache: {
    cache: new ResponseCache(stores.local, { maxEntryBytes: config.cache.max_entry_bytes }, {
      onError: (op, error) => logger.warn(`cache ${op} failed`, { error: String(error) }),
    }),
    config: { ttlSeconds: config.cache.ttl, shared: config.cache.shared, maxEntryBytes: config.cache.max_entry_bytes },
  },
  allowedOrigins: config.gateway.allowed_origins,
  guardrails: services.guardrails,
  onRequestFinished: services.onRequestFinished,
});

const originSecrets = originSecretSource({
  client: secrets,
  secretId: required(GATEWAY_ENV.originSecretId),
});

export const handler = streamingHandler(withOriginSecret(gateway, originSecrets, logger));
