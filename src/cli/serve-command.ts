import { Command, InvalidArgumentError } from 'commander';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { GATEWAY_SERVICE_NAME, METRIC_NAMESPACE } from '../telemetry/metric-names.js';
import { AdmissionControl, authenticateApiKey, createApiKey, listApiKeys } from '../admission/index.js';
import { serveNode } from '../adapters/node-server.js';
import { ResponseCache } from '../cache/index.js';
import { CONFIG_DEFAULTS, loadConfig, type AigwConfig } from '../config/index.js';
import { unloadAllModels } from '../engine/index.js';
import { createGateway } from '../gateway.js';
import { gatewayServices } from '../gateway-services.js';
import { createModelResolver, routedModels } from '../routing/index.js';
import { pullWithProgress } from './model-pull-command.js';
import { loadServedModels } from './served-models.js';
import { openLocalStore } from './local-store.js';

/** `aigw serve`: the whole gateway on this machine (`npm start`). */
export function serveCommand(): Command {
  return new Command('serve')
    .description('run the gateway on this machine, with DynamoDB Local and the demo model unless configured otherwise')
    .option('-p, --port <port>', 'port to listen on (overrides [gateway] port)', (value) => {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('expected a port number');
      return port;
    })
    .option(
      '--join',
      "serve beside a running `aigw serve`: use its DynamoDB Local (same data folder), so both share keys, limits, cache and usage; give this one its own --port",
    )
    .option('--model <hub-repo>', 'pull a model from the Hugging Face Hub (ONNX export or GGUF) and serve it (overrides [model] pull, $AIGW_MODEL_PULL)')
    .action(async (options: { port?: number; join?: boolean; model?: string }, command: Command) => {
      const config = loadConfig(command.optsWithGlobals().config);
      if (options.port !== undefined) config.gateway.port = options.port;
      if (options.model !== undefined) config.model.pull = options.model;
      await serve(config, { join: options.join ?? false });
    });
}

export async function serve(config: AigwConfig, options: { join: boolean } = { join: false }): Promise<void> {
  const logger = new Logger({ serviceName: 'aigw', logLevel: config.monitoring.log_level.toUpperCase() as 'INFO' });
  // Locally EMF lines go to stdout like in Lambda: the same lines CloudWatch would turn into metrics.
  const metrics = config.monitoring.metrics === 'emf' ? new Metrics({ namespace: METRIC_NAMESPACE, serviceName: GATEWAY_SERVICE_NAME }) : undefined;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  if (config.model.pull) {
    // Before DynamoDB Local starts: a first pull can take minutes, a later one finds the package.
    const pulled = await pullWithProgress(config.model.pull, {});
    say(pulled.summary.split('\n')[0]);
    config.model.path = pulled.outDir;
    if (config.model.name === CONFIG_DEFAULTS.model.name) config.model.name = pulled.manifest.name;
  }

  const local = await openLocalStore(config, { advertise: true, join: options.join });
  const cleanups: (() => Promise<void>)[] = [() => local.close()];
  const shutdown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    cleanups.push(async () => unloadAllModels());
    const served = await loadServedModels(config, say);
    const firstModel = served.registry.list()[0]!.id;

    const services = gatewayServices(config, local.store, { flushEachRequest: false });
    cleanups.push(() => services.close());
    await services.auditConfiguration();
    const control = new AdmissionControl(local.store, { leaseSeconds: config.admission.lease_seconds });
    const models = routedModels(served.registry.backends(), served.caps, config.routing, control);
    const gateway = createGateway({
      backends: models.backends,
      aliases: createModelResolver(local.store, { cacheMs: config.aliases.cache_seconds * 1000, logger, metrics, audit: services.releaseAudit }),
      defaultModel: firstModel,
      authenticate: (presented) => authenticateApiKey(local.store, presented),
      logger,
      maxRequestBytes: config.gateway.max_request_bytes,
      logPrompts: config.gateway.log_prompts,
      admission: {
        control,
        plans: config.plans,
        failOpen: config.admission.fail_open,
        modelCaps: models.modelCaps,
        budgetAlertPercents: config.admission.budget_alert_percents,
      },
      cache: {
        cache: new ResponseCache(local.store, { maxEntryBytes: config.cache.max_entry_bytes }, {
          onError: (op, error) => logger.warn(`cache ${op} failed`, { error: String(error) }),
        }),
        config: { ttlSeconds: config.cache.ttl, shared: config.cache.shared, maxEntryBytes: config.cache.max_entry_bytes },
      },
      allowedOrigins: config.gateway.allowed_origins,
      metrics,
      guardrails: services.guardrails,
      onRequestFinished: services.onRequestFinished,
    });
    const server = await serveNode(gateway, { host: config.gateway.host, port: config.gateway.port });
    cleanups.push(() => server.close());

    say(`aigw is serving ${served.registry.list().map((b) => b.version).join(', ')} on ${server.url}/v1 (Ctrl-C to stop)`);
    if ((await listApiKeys(local.store)).length === 0) {
      const { key } = await createApiKey(local.store, { name: 'dev' });
      say(firstRunHelp(server.url, key, firstModel));
    }
  } catch (error) {
    await shutdown();
    throw error;
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      say(`${signal}: finishing in-flight requests and stopping ...`);
      shutdown().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

function firstRunHelp(url: string, key: string, model: string): string {
  return `
A development API key was created. It is shown only this once; only its hash is stored:

  ${key}

Try it:

  curl ${url}/v1/chat/completions \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}]}'

Or from the OpenAI SDK (JavaScript):

  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${url}/v1', apiKey: '${key}' });
  const reply = await client.chat.completions.create({ model: '${model}', messages: [{ role: 'user', content: 'Hello!' }] });

More keys: npx aigw keys create --name <name>. The demo model has random weights: its replies are gibberish.
`;
}

