import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, ConfigError, loadConfig, parseConfig } from '../../src/config/index.js';

const repoToml = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'aigw.toml');

function configError(toml: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parseConfig(toml, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('gives every key its documented default when the file and env are empty', () => {
    expect(parseConfig('', {})).toEqual({
      model: { name: 'aigw-tiny', format: 'auto', max_tokens: 256, path: '.aigw/models/aigw-tiny', pull: '', max_concurrent_requests: 0 },
      performance: { batch_size: 4, precision: 'auto', threads: 0 },
      monitoring: { log_level: 'info', metrics: 'emf', otlp_endpoint: '', otlp_headers: {}, service_name: 'aigw' },
      gateway: {
        host: '127.0.0.1',
        port: 8787,
        allowed_origins: [],
        max_request_bytes: 1_048_576,
        log_prompts: false,
      },
      dynamodb: { endpoint: '', region: 'us-east-1', table: 'aigw', data_dir: '.aigw/dynamodb', timeout_ms: 1000 },
      admission: { lease_seconds: 900, fail_open: false, budget_alert_percents: [50, 80, 100] },
      cache: { ttl: 3600, shared: false, max_entry_bytes: 350_000 },
      plans: { free: { requests_per_month: 1_000_000, requests_per_minute: 600, max_concurrent_requests: 8 } },
      aliases: { cache_seconds: 2 },
      routing: {
        first_token_timeout_ms: 30_000,
        stall_timeout_ms: 15_000,
        breaker_failure_threshold: 3,
        breaker_cooldown_seconds: 30,
        routes: {},
        fallbacks: {},
      },
      guardrails: { mask: '[redacted]', apply: [], plans: {}, rules: {} },
      audit: { enabled: true, requests: true, retention_days: 180 },
    });
    expect(CONFIG_DEFAULTS).toEqual(parseConfig('', {}));
  });

  it('fills the missing keys of a partly written section', () => {
    const config = parseConfig('[gateway]\nport = 9001\n', {});
    expect(config.gateway).toEqual({ ...CONFIG_DEFAULTS.gateway, port: 9001 });
    expect(config.model).toEqual(CONFIG_DEFAULTS.model);
  });

  it("the repo's aigw.toml spells out every key, each with a comment, at its default", () => {
    const text = readFileSync(repoToml, 'utf8');
    const raw = parse(text) as Record<string, Record<string, unknown>>;
    // [deploy] is the CDK app's section (infra/deploy-config.ts checks it), not a gateway default.
    expect(Object.keys(raw).filter((section) => section !== 'deploy').sort()).toEqual(Object.keys(CONFIG_DEFAULTS).sort());
    for (const [section, keys] of Object.entries(CONFIG_DEFAULTS)) {
      expect(Object.keys(raw[section]!).sort()).toEqual(Object.keys(keys).sort());
    }
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (/^[a-z_]+ = /.test(line)) expect(lines[i - 1]!.startsWith('#'), line).toBe(true);
    });
    const { deploy, ...gatewayConfig } = loadConfig(repoToml, {});
    expect(gatewayConfig).toEqual(CONFIG_DEFAULTS);
    expect(deploy).toBeDefined();
  });
});

it('accepts a [deploy] section, which belongs to the CDK app', () => {
  const config = parseConfig('[deploy]\nregions = ["eu-west-1"]\n[[deploy.models]]\nname = "m"\n', {});
  expect(config.deploy).toEqual({ regions: ['eu-west-1'], models: [{ name: 'm' }] });
  expect(config.gateway).toEqual(CONFIG_DEFAULTS.gateway);
});

describe('loading a file', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('reads the given file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigw-config-'));
    dirs.push(dir);
    const file = join(dir, 'custom.toml');
    await writeFile(file, '[model]\nname = "qwen"\nmax_tokens = 64\n');
    const config = loadConfig(file, {});
    expect(config.model.name).toBe('qwen');
    expect(config.model.max_tokens).toBe(64);
  });

  it('fails with ConfigError when a path given explicitly does not exist', () => {
    const missing = join(tmpdir(), 'aigw-no-such-dir', 'aigw.toml');
    expect(() => loadConfig(missing, {})).toThrow(ConfigError);
    expect(() => loadConfig(missing, {})).toThrow(`${missing}: file not found`);
  });

  it('names the file in TOML syntax errors with line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aigw-config-'));
    dirs.push(dir);
    const file = join(dir, 'broken.toml');
    await writeFile(file, '[gateway]\nport = = 1\n');
    expect(() => loadConfig(file, {})).toThrow(new RegExp(`^${file}: invalid TOML at line 2, column \\d+`));
  });
});

describe('environment overrides', () => {
  it('AIGW_<SECTION>_<KEY> overrides the file, converted to the key type', () => {
    const config = parseConfig('[gateway]\nport = 9001\nlog_prompts = false\n', {
      AIGW_GATEWAY_PORT: '9000',
      AIGW_GATEWAY_LOG_PROMPTS: 'true',
      AIGW_GATEWAY_ALLOWED_ORIGINS: 'https://a.example.com, https://b.example.com',
      AIGW_DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
      AIGW_MODEL_MAX_TOKENS: '64',
      AIGW_PERFORMANCE_PRECISION: 'q4',
    });
    expect(config.gateway.port).toBe(9000);
    expect(config.gateway.log_prompts).toBe(true);
    expect(config.gateway.allowed_origins).toEqual(['https://a.example.com', 'https://b.example.com']);
    expect(config.dynamodb.endpoint).toBe('http://127.0.0.1:8000');
    expect(config.model.max_tokens).toBe(64);
    expect(config.performance.precision).toBe('q4');
  });

  it('accepts 0/1 and false for booleans and an empty string for text', () => {
    expect(parseConfig('', { AIGW_GATEWAY_LOG_PROMPTS: '0' }).gateway.log_prompts).toBe(false);
    expect(parseConfig('', { AIGW_GATEWAY_LOG_PROMPTS: '1' }).gateway.log_prompts).toBe(true);
    const config = parseConfig('[dynamodb]\nendpoint = "http://x:1"\n', { AIGW_DYNAMODB_ENDPOINT: '' });
    expect(config.dynamodb.endpoint).toBe('');
  });

  it('ignores AIGW_ variables that do not name a section', () => {
    expect(parseConfig('', { AIGW_CONFIG: 'x.toml', AIGW_DEV: '1', PATH: '/bin' })).toEqual(CONFIG_DEFAULTS);
  });

  it('rejects an unknown key in a known section, naming key and variable', () => {
    const error = configError('', { AIGW_GATEWAY_PROT: '9000' });
    expect(error.message).toContain('gateway.prot: unknown key (from AIGW_GATEWAY_PROT)');
    expect(error.issues).toEqual([{ key: 'gateway.prot', problem: 'unknown key', envVar: 'AIGW_GATEWAY_PROT' }]);
  });

  it('names the variable when its value is invalid', () => {
    expect(configError('', { AIGW_GATEWAY_PORT: 'abc' }).message).toContain(
      'gateway.port: expected an integer between 1 and 65535 (from AIGW_GATEWAY_PORT)',
    );
    expect(configError('', { AIGW_GATEWAY_LOG_PROMPTS: 'maybe' }).message).toContain(
      'gateway.log_prompts: expected true or false (from AIGW_GATEWAY_LOG_PROMPTS)',
    );
  });
});

describe('invalid values name the offending key', () => {
  const cases: Array<[string, string, string]> = [
    ['port out of range', '[gateway]\nport = 70000', 'gateway.port: expected an integer between 1 and 65535'],
    ['port zero', '[gateway]\nport = 0', 'gateway.port: expected an integer between 1 and 65535'],
    ['fractional integer', '[gateway]\nport = 8787.5', 'gateway.port: expected an integer between 1 and 65535'],
    ['string for integer', '[gateway]\nport = "8787"', 'gateway.port: expected an integer between 1 and 65535'],
    ['negative threads', '[performance]\nthreads = -1', 'performance.threads: expected an integer between 0 and 1024'],
    ['zero batch', '[performance]\nbatch_size = 0', 'performance.batch_size: expected an integer between 1 and 1024'],
    ['tiny body limit', '[gateway]\nmax_request_bytes = 10', 'gateway.max_request_bytes: expected an integer between 1024'],
    ['unknown format', '[model]\nformat = "gguf"', 'model.format: expected one of "auto", "optimum", "genai"'],
    ['unknown precision', '[performance]\nprecision = "fp8"', 'performance.precision: expected one of "auto", "fp32"'],
    ['unknown log level', '[monitoring]\nlog_level = "trace"', 'monitoring.log_level: expected one of "debug", "info"'],
    ['metrics sink', '[monitoring]\nmetrics = "prometheus"', 'monitoring.metrics: expected one of "emf", "off"'],
    ['string for boolean', '[gateway]\nlog_prompts = "yes"', 'gateway.log_prompts: expected true or false'],
    ['empty model name', '[model]\nname = ""', 'model.name: expected a model name'],
    ['number for text', '[gateway]\nhost = 127', 'gateway.host: expected a host name or IP address'],
    ['origin with a path', '[gateway]\nallowed_origins = ["https://ok.example.com", "https://x.example.com/app"]', 'gateway.allowed_origins[1]: expected an origin'],
    ['origins not a list', '[gateway]\nallowed_origins = "*"', 'gateway.allowed_origins: expected a list of origins'],
    ['endpoint without scheme', '[dynamodb]\nendpoint = "localhost:8000"', 'dynamodb.endpoint: expected an http(s) URL'],
    ['short table name', '[dynamodb]\ntable = "ab"', 'dynamodb.table: expected 3 to 255 letters'],
    ['section not a table', 'gateway = 5', 'gateway: expected a table ([gateway])'],
  ];
  it.each(cases)('%s', (_, toml, expected) => {
    expect(configError(toml).message).toContain(expected);
  });

  it('rejects an unknown section and an unknown key, each named', () => {
    const error = configError('[gatway]\nport = 1\n[gateway]\nprot = 9000\n');
    expect(error.issues).toEqual(
      expect.arrayContaining([
        { key: 'gatway', problem: 'unknown section' },
        { key: 'gateway.prot', problem: 'unknown key' },
      ]),
    );
    expect(error.message).toContain('gatway: unknown section');
    expect(error.message).toContain('gateway.prot: unknown key');
  });

  it('reports every problem at once', () => {
    const error = configError('[gateway]\nport = 0\n[model]\nmax_tokens = 0\n');
    expect(error.issues.map((issue) => issue.key).sort()).toEqual(['gateway.port', 'model.max_tokens']);
  });
});
