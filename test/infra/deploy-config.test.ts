import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { DeployConfigError, deployConfigFrom, loadDeployConfig, parseDeployConfig } from '../../infra/deploy-config.js';
import { GATEWAY_ENV, readModelFunctionUrls } from '../../infra/function-env.js';
import { scratchDir } from '../helpers/scratch-dir.js';

describe('deploy config', () => {
  it('defaults every key when aigw.toml has no [deploy] section', () => {
    const config = parseDeployConfig('[gateway]\nport = 9000\n');
    expect(config).toEqual({
      regions: ['us-east-1'],
      architecture: 'arm64',
      // No reservations by default: a new account's quota (10) can't hold any.
      gatewayReservedConcurrency: undefined,
      requireTls12: true,
      alarmEmail: undefined,
      dailySpendAlarmUsd: 10,
      keyBudgetAlertPercents: [50, 80, 100],
      logRetentionDays: 180,
      originSecretRotation: 1,
      limitsInPrimaryRegion: true,
      customDomain: undefined,
      models: [],
      gatewayToml: '[gateway]\nport = 9000\n',
      upstreamKeySecrets: [],
      gatewayWordLists: [],
    });
  });

  it('reads a full [deploy] section; models inherit the architecture unless they set one', () => {
    const config = parseDeployConfig(`
[admission]
budget_alert_percents = [50, 75, 100]

[deploy]
regions = ["eu-west-1", "us-east-2"]
architecture = "x86_64"
alarm_email = "ops@example.com"
daily_spend_alarm_usd = 42.5
key_budget_alert_percents = [75, 100]
log_retention_days = 365
domain_name = "ai.example.com"
certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"
gateway_reserved_concurrency = 20

[[deploy.models]]
name = "llama-3.2-1b"
version = "2026-01"
memory_mb = 8192
ephemeral_storage_mb = 10240
timeout_seconds = 900
reserved_concurrency = 5
context_length = 131072
input_usd_per_million_tokens = "0.02"
output_usd_per_million_tokens = "0.000001"
max_tokens = 1024

[[deploy.models]]
name = "tiny"
version = "1"
architecture = "arm64"
context_length = 2048
input_usd_per_million_tokens = 0
output_usd_per_million_tokens = 1.5
`);
    expect(config.regions).toEqual(['eu-west-1', 'us-east-2']);
    expect(config.alarmEmail).toBe('ops@example.com');
    expect(config.dailySpendAlarmUsd).toBe(42.5);
    expect(config.keyBudgetAlertPercents).toEqual([75, 100]);
    expect(config.logRetentionDays).toBe(365);
    expect(config.gatewayReservedConcurrency).toBe(20);
    expect(config.customDomain).toEqual({
      domainName: 'ai.example.com',
      certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/abc-123',
    });
    expect(config.models).toEqual([
      {
        name: 'llama-3.2-1b',
        version: '2026-01',
        memoryMb: 8192,
        ephemeralStorageMb: 10240,
        timeoutSeconds: 900,
        reservedConcurrency: 5,
        maxConcurrentRequests: 5,
        architecture: 'x86_64',
        contextLength: 131072,
        price: { inputMicrosPerMillionTokens: 20_000, outputMicrosPerMillionTokens: 1 },
        maxTokens: 1024,
      },
      {
        name: 'tiny',
        version: '1',
        memoryMb: 4096,
        ephemeralStorageMb: 4096,
        timeoutSeconds: 300,
        reservedConcurrency: undefined,
        maxConcurrentRequests: undefined,
        architecture: 'arm64',
        contextLength: 2048,
        price: { inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 1_500_000 },
        maxTokens: undefined,
      },
    ]);
    // The gateway function gets the sections it applies, without [deploy].
    expect(config.gatewayToml).toBe('[admission]\nbudget_alert_percents = [ 50, 75, 100 ]\n');
  });

  it('alarms on the percents the gateway counts unless told otherwise, and only on those', () => {
    expect(parseDeployConfig('[admission]\nbudget_alert_percents = [90]\n').keyBudgetAlertPercents).toEqual([90]);
    expect(
      parseDeployConfig('[admission]\nbudget_alert_percents = [50, 90]\n[deploy]\nkey_budget_alert_percents = [90]\n')
        .keyBudgetAlertPercents,
    ).toEqual([90]);
    expect(() => parseDeployConfig('[deploy]\nkey_budget_alert_percents = [95]\n')).toThrow(
      /^deploy\.key_budget_alert_percents: 95 is not in \[admission\] budget_alert_percents \(50, 80, 100\)/,
    );
  });

  it('keeps sections that only a local `aigw serve` uses out of the gateway function', () => {
    const config = parseDeployConfig('[model]\nname = "x"\n[performance]\nthreads = 2\n[cache]\nttl = 10\n');
    expect(config.gatewayToml).toBe('[cache]\nttl = 10\n');
  });

  it('fails on a mistake in any section, as the deployed gateway would at cold start', () => {
    expect(() => parseDeployConfig('[gateway]\nprot = 1\n', 'my.toml')).toThrow(DeployConfigError);
    expect(() => parseDeployConfig('[gateway]\nprot = 1\n', 'my.toml')).toThrow(/my\.toml.*gateway/);
  });

  const model = { name: 'm', version: '1', context_length: 4096, input_usd_per_million_tokens: '1', output_usd_per_million_tokens: '2' };
  it.each([
    [{ regionz: ['eu-west-1'] }, /^deploy: .*regionz/],
    [{ regions: [] }, /^deploy\.regions: /],
    [{ regions: ['eu-west-9'] }, /^deploy\.regions\[0\]: expected an AWS region name/],
    [{ regions: ['eu-west-1', 'eu-west-1'] }, /^deploy\.regions: regions must not repeat/],
    [{ architecture: 'arm' }, /^deploy\.architecture: /],
    [{ alarm_email: 'not-an-email' }, /^deploy\.alarm_email: /],
    [{ daily_spend_alarm_usd: 0 }, /^deploy\.daily_spend_alarm_usd: /],
    [{ key_budget_alert_percents: [50, 50] }, /^deploy\.key_budget_alert_percents: percents must not repeat/],
    [{ log_retention_days: 100 }, /^deploy\.log_retention_days: expected one of CloudWatch's retention periods/],
    [{ domain_name: 'ai.example.com' }, /^deploy\.certificate_arn: domain_name and certificate_arn go together/],
    [{ certificate_arn: 'arn:aws:acm:eu-west-1:123456789012:certificate/x' }, /^deploy\.certificate_arn: expected an ACM certificate ARN in us-east-1/],
    [{ models: [{ ...model, name: 'Bad Name' }] }, /^deploy\.models\[0\]\.name: /],
    [{ models: [{ ...model, memory_mb: 64 }] }, /^deploy\.models\[0\]\.memory_mb: /],
    [{ models: [{ ...model, ephemeral_storage_mb: 20000 }] }, /^deploy\.models\[0\]\.ephemeral_storage_mb: /],
    [{ models: [{ ...model, timeout_seconds: 901 }] }, /^deploy\.models\[0\]\.timeout_seconds: /],
    [{ models: [{ ...model, reserved_concurrency: -1 }] }, /^deploy\.models\[0\]\.reserved_concurrency: /],
    [{ gateway_reserved_concurrency: 1.5 }, /^deploy\.gateway_reserved_concurrency: /],
    [{ require_tls12: 'yes' }, /^deploy\.require_tls12: /],
    [{ models: [{ ...model, gpu: true }] }, /^deploy\.models\[0\]: .*gpu/],
    [{ models: [{ name: 'm', version: '1' }] }, /^deploy\.models\[0\]\.context_length: /],
    [{ models: [{ ...model, input_usd_per_million_tokens: '-1' }] }, /^deploy\.models\[0\]\.input_usd_per_million_tokens: expected dollars/],
    [{ models: [{ ...model, output_usd_per_million_tokens: '0.0000001' }] }, /^deploy\.models\[0\]\.output_usd_per_million_tokens: .*at most 6 decimals/],
    [{ models: [{ ...model, max_tokens: 0 }] }, /^deploy\.models\[0\]\.max_tokens: /],
    [{ models: [model, model] }, /^deploy\.models\[1\]: duplicate model m@1/],
  ])('rejects %j naming the key', (raw, message) => {
    expect(() => deployConfigFrom(raw)).toThrow(DeployConfigError);
    expect(() => deployConfigFrom(raw)).toThrow(message);
  });

  it('reads reserved_concurrency = 0 as no reservation, for the gateway and each model', () => {
    const config = deployConfigFrom({ gateway_reserved_concurrency: 0, models: [{ ...model, reserved_concurrency: 0 }] });
    expect(config.gatewayReservedConcurrency).toBeUndefined();
    expect(config.models[0]!.reservedConcurrency).toBeUndefined();
  });

  it('caps a model\'s requests in flight at max_concurrent_requests, by default at its reservation', () => {
    const models = deployConfigFrom({
      models: [
        { ...model, name: 'capped', max_concurrent_requests: 3 },
        { ...model, name: 'reserved', reserved_concurrency: 4 },
        { ...model, name: 'both', reserved_concurrency: 4, max_concurrent_requests: 0 },
      ],
    }).models;
    expect(models.map((entry) => [entry.reservedConcurrency, entry.maxConcurrentRequests])).toEqual([
      [undefined, 3],
      [4, 4],
      [4, undefined],
    ]);
  });

  it('rejects a file that is not TOML', () => {
    expect(() => parseDeployConfig('[deploy\nregions = 1')).toThrow(DeployConfigError);
    expect(() => parseDeployConfig('[deploy\nregions = 1')).toThrow(/aigw\.toml: invalid TOML/);
  });

  it('loads defaults when the file is missing, and the file when it exists', () => {
    const dir = scratchDir('aigw-deploy-config-');
    expect(loadDeployConfig(join(dir, 'missing.toml')).regions).toEqual(['us-east-1']);
    const path = join(dir, 'aigw.toml');
    writeFileSync(path, '[deploy]\nregions = ["ap-southeast-2"]\n');
    expect(loadDeployConfig(path).regions).toEqual(['ap-southeast-2']);
  });
});

describe('model function URLs in the gateway environment', () => {
  it('parses the JSON the stack writes', () => {
    const urls = [{ name: 'demo', version: '1', url: 'https://abc.lambda-url.eu-west-1.on.aws/' }];
    expect(readModelFunctionUrls({ [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify(urls) })).toEqual(urls);
    expect(readModelFunctionUrls({})).toEqual([]);
  });

  it('rejects malformed values with the variable named', () => {
    expect(() => readModelFunctionUrls({ [GATEWAY_ENV.modelFunctionUrls]: '{' })).toThrow(/AIGW_MODEL_FUNCTION_URLS is not JSON/);
    expect(() =>
      readModelFunctionUrls({ [GATEWAY_ENV.modelFunctionUrls]: JSON.stringify([{ name: 'demo', version: '1', url: 'nope' }]) }),
    ).toThrow(/AIGW_MODEL_FUNCTION_URLS/);
  });
});

describe('guardrail word lists', () => {
  it('travel in the gateway function bundle: AIGW_CONFIG names the bundled copy, inline terms stay', () => {
    const dir = scratchDir('aigw-words-');
    const file = join(dir, 'words.txt');
    writeFileSync(file, '# comment\nfirst term\n\nsecond\n');
    const config = parseDeployConfig(
      `[guardrails]\napply = ["words", "inline"]\n[guardrails.rules.words]\nwords = ${JSON.stringify(file)}\nterms = ["third"]\naction = "block"\n` +
        '[guardrails.rules.inline]\nterms = ["fourth"]\n',
    );
    const sent = parseToml(config.gatewayToml) as { guardrails: { rules: Record<string, Record<string, unknown>> } };
    expect(sent.guardrails.rules.words).toEqual({ words: 'guardrails/words.txt', terms: ['third'], action: 'block' });
    expect(sent.guardrails.rules.inline).toEqual({ terms: ['fourth'] });
    expect(config.gatewayToml).not.toContain('first term');
    expect(config.gatewayWordLists).toEqual([{ rule: 'words', source: file, bundledPath: 'guardrails/words.txt' }]);
  });

  it('fail the synth when a list is unreadable, naming the rule and the file', () => {
    expect(() => parseDeployConfig('[guardrails.rules.words]\nwords = "/nonexistent/words.txt"\n')).toThrow(DeployConfigError);
    expect(() => parseDeployConfig('[guardrails.rules.words]\nwords = "/nonexistent/words.txt"\n')).toThrow(
      /guardrails\.rules\.words\.words: cannot read \/nonexistent\/words\.txt/,
    );
    const dir = scratchDir('aigw-words-');
    expect(() => parseDeployConfig(`[guardrails.rules.words]\nwords = ${JSON.stringify(dir)}\n`)).toThrow(/cannot read/);
  });

  it('refuse two listed rules whose names differ only in case (their bundled files would collide on some disks)', () => {
    const file = join(scratchDir('aigw-words-'), 'words.txt');
    writeFileSync(file, 'term\n');
    const toml = `[guardrails.rules.Words]\nwords = ${JSON.stringify(file)}\n[guardrails.rules.words]\nwords = ${JSON.stringify(file)}\n`;
    expect(() => parseDeployConfig(toml)).toThrow(/differ only in case/);
  });
});
