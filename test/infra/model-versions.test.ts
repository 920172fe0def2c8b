// Two versions of one model deployed side by side: each its own model function reading only its
// own package prefix, both reachable from the gateway under `name@version`; upstream keys come
// from Secrets Manager, and only those secrets are readable.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeployConfig } from '../../infra/deploy-config.js';
import { GATEWAY_ENV, MODEL_ENV } from '../../infra/function-env.js';
import type { RegionalStack } from '../../infra/regional-stack.js';
import { GATEWAY_CONFIG_ENV } from '../../src/adapters/gateway-function-config.js';
import { parseConfig } from '../../src/config/index.js';
import { actionsOf, fixtureEntries, functionProperties, MODEL_PRICING, roleStatements, synthAigw, type SynthesizedApp } from './synth-app.js';

const TOML = `
[[models]]
name = "heavy"
base_url = "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1"
upstream_model = "openai.gpt-oss-120b-1:0"
api_key_secret = "aigw/bedrock-key"
context_length = 128000
input_usd_per_million_tokens = "0.15"
output_usd_per_million_tokens = "0.60"

[[models]]
name = "local-only"
path = ".aigw/models/aigw-tiny"

[deploy]
regions = ["eu-west-1"]

[[deploy.models]]
name = "qwen"
version = "3"
context_length = 2048
input_usd_per_million_tokens = "0"
output_usd_per_million_tokens = "0"

[[deploy.models]]
name = "qwen"
version = "4"
memory_mb = 6144
context_length = 4096
input_usd_per_million_tokens = "0.10"
output_usd_per_million_tokens = "0.20"
`;

let synth: SynthesizedApp;
let stack: RegionalStack;

beforeAll(() => {
  const config = parseDeployConfig(TOML);
  synth = synthAigw(
    { regions: config.regions, models: config.models.map((m) => ({ name: m.name, version: m.version, memory_mb: m.memoryMb, ...MODEL_PRICING })) },
    fixtureEntries,
    { gatewayToml: config.gatewayToml, upstreamKeySecrets: config.upstreamKeySecrets },
  );
  stack = synth.stacks.regional[0]!;
});

describe('two versions of one model', () => {
  it('are two model functions, each loading its own version', () => {
    const template = synth.template(stack);
    expect([...stack.modelFunctions.keys()].sort()).toEqual(['qwen@3', 'qwen@4']);
    const env = (key: string) => functionProperties(template, stack.modelFunctions.get(key)!.fn).Environment.Variables;
    expect(env('qwen@3')).toMatchObject({ [MODEL_ENV.name]: 'qwen', [MODEL_ENV.version]: '3' });
    expect(env('qwen@4')).toMatchObject({ [MODEL_ENV.name]: 'qwen', [MODEL_ENV.version]: '4' });
    expect(functionProperties(template, stack.modelFunctions.get('qwen@4')!.fn).MemorySize).toBe(6144);
  });

  it('each reads only its own version of the package', () => {
    const template = synth.template(stack);
    for (const [key, { fn }] of stack.modelFunctions) {
      const version = key.split('@')[1];
      const reads = JSON.stringify(roleStatements(template, fn).filter((s) => actionsOf([s]).includes('s3:GetObject')));
      expect(reads).toContain(`models/qwen/${version}/*`);
      expect(reads).not.toContain(`models/qwen/${version === '3' ? '4' : '3'}/`);
    }
  });

  it('the gateway gets both, by version, and only the upstream entries of [[models]]', () => {
    const template = synth.template(stack);
    const env = functionProperties(template, stack.gateway).Environment.Variables;
    const urls = JSON.stringify(env[GATEWAY_ENV.modelFunctionUrls]);
    expect(urls).toContain('\\"version\\":\\"3\\"');
    expect(urls).toContain('\\"version\\":\\"4\\"');
    const gatewayConfig = parseConfig(env[GATEWAY_CONFIG_ENV], {});
    expect(gatewayConfig.models?.map((m) => m.name)).toEqual(['heavy']);
  });

  it('the gateway may read the upstream key secret and no other besides the origin secret', () => {
    const template = synth.template(stack);
    const secretResources = JSON.stringify(
      roleStatements(template, stack.gateway).filter((s) => actionsOf([s]).some((action) => action.startsWith('secretsmanager:'))),
    );
    expect(secretResources).toContain(':secret:aigw/bedrock-key-??????');
  });
});

describe('deploy config of upstreams', () => {
  it('refuses an environment-variable key for the deployed gateway', () => {
    expect(() => parseDeployConfig(TOML.replace('api_key_secret = "aigw/bedrock-key"', 'api_key_env = "BEDROCK_API_KEY"'))).toThrow(
      /models\[0\]\.api_key_env: the deployed gateway reads an upstream's key from Secrets Manager/,
    );
  });
});
