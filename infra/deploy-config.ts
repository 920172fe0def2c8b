import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError, parseConfig, usdMicros, type AigwConfig } from '../src/config/index.js';
import { isKnownRegion } from './regions.js';

/** Thrown for an unreadable or invalid `[deploy]` section; the message names the offending key. */
export class DeployConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployConfigError';
  }
}

/** The retention periods CloudWatch Logs accepts. */
export const LOG_RETENTION_DAYS: readonly number[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const architectureSchema = z.enum(['arm64', 'x86_64']);
export type LambdaArchitecture = z.infer<typeof architectureSchema>;

/** Lambda's own ceiling on one function's reservation (the account quota binds long before). */
const MAX_RESERVED_CONCURRENCY = 100_000;

// Names end up in S3 prefixes, construct ids and function names: keep them to a safe alphabet.
const namePart = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const modelSchema = z
  .object({
    name: z.string().regex(namePart, 'expected lowercase letters, digits, ".", "_" or "-"'),
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected letters, digits, ".", "_" or "-"'),
    memory_mb: z.number().int().min(128).max(10240).default(4096),
    ephemeral_storage_mb: z.number().int().min(512).max(10240).default(4096),
    timeout_seconds: z.number().int().min(1).max(900).default(300),
    // 0 = no reservation: the model shares the account's unreserved pool. A new account's quota
    // (10) leaves nothing to reserve, since Lambda keeps 100 unreserved; `aigw deploy check` says so.
    reserved_concurrency: z.number().int().min(0).max(MAX_RESERVED_CONCURRENCY).default(0),
    // Requests the gateways admit to the model at once, counted in DynamoDB (429 beyond it);
    // default: the reservation, if any; 0 = no cap.
    max_concurrent_requests: z.number().int().min(0).max(1_000_000).optional(),
    architecture: architectureSchema.optional(),
    // The gateway can't read the model bucket, so what admission needs up front comes from here.
    context_length: z.number().int().positive(),
    input_usd_per_million_tokens: usdMicros,
    output_usd_per_million_tokens: usdMicros,
    max_tokens: z.number().int().positive().optional(),
  })
  .strict();

const deploySchema = z
  .object({
    regions: z
      .array(z.string().refine(isKnownRegion, 'expected an AWS region name such as "eu-west-1"'))
      .min(1)
      .refine((list) => new Set(list).size === list.length, 'regions must not repeat')
      .default(['us-east-1']),
    architecture: architectureSchema.default('arm64'),
    // Caps the gateway function's instances in each region, so calls around CloudFront can't take
    // the region's whole pool (README "Calls around CloudFront"); 0 = no reservation.
    gateway_reserved_concurrency: z.number().int().min(0).max(MAX_RESERVED_CONCURRENCY).default(0),
    // The *.cloudfront.net certificate comes with CloudFront's TLSv1 viewer policy, which nobody
    // can change: true refuses to synthesize unless domain_name and certificate_arn are set.
    require_tls12: z.boolean().default(true),
    alarm_email: z.email().optional(),
    daily_spend_alarm_usd: z.number().positive().default(10),
    // Which of the percents the gateway counts ([admission] budget_alert_percents) raise an alarm.
    key_budget_alert_percents: z
      .array(z.number().int().min(1).max(1000))
      .max(10)
      .refine((list) => new Set(list).size === list.length, 'percents must not repeat')
      .optional(),
    log_retention_days: z
      .number()
      .int()
      .refine((days) => LOG_RETENTION_DAYS.includes(days), `expected one of CloudWatch's retention periods: ${LOG_RETENTION_DAYS.join(', ')}`)
      .default(180),
    // A custom domain is the only way to choose CloudFront's viewer TLS policy (TLSv1.2_2021);
    // the default *.cloudfront.net certificate is fixed by AWS. The certificate lives in us-east-1.
    domain_name: z.string().regex(/^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$/, 'expected a lowercase DNS name').optional(),
    certificate_arn: z.string().regex(/^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[\w-]+$/, 'expected an ACM certificate ARN in us-east-1').optional(),
    // Bump to push a rotated origin secret to CloudFront (see infra/origin-protection.ts).
    origin_secret_rotation: z.number().int().min(1).default(1),
    // Global tables replicate last-writer-wins, so only one region's replica can count exactly.
    limits_in_primary_region: z.boolean().default(true),
    models: z.array(modelSchema).default([]),
  })
  .strict()
  .superRefine((deploy, ctx) => {
    if ((deploy.domain_name === undefined) !== (deploy.certificate_arn === undefined)) {
      const missing = deploy.domain_name === undefined ? 'domain_name' : 'certificate_arn';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'domain_name and certificate_arn go together' });
    }
    const seen = new Set<string>();
    deploy.models.forEach((model, index) => {
      const id = `${model.name}@${model.version}`;
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: ['models', index], message: `duplicate model ${id}` });
      seen.add(id);
    });
  });

export interface ModelDeployment {
  readonly name: string;
  readonly version: string;
  readonly contextLength: number;
  /** Integer micro-dollars per million tokens, as src/admission/pricing.ts bills them. */
  readonly price: { readonly inputMicrosPerMillionTokens: number; readonly outputMicrosPerMillionTokens: number };
  /** Completion tokens when a request sets none. */
  readonly maxTokens?: number;
  readonly memoryMb: number;
  readonly ephemeralStorageMb: number;
  readonly timeoutSeconds: number;
  /** Instances reserved for (and capped at) this model in each region; undefined: no reservation. */
  readonly reservedConcurrency?: number;
  /** Requests admitted to the model at once across all gateways; undefined: no cap. */
  readonly maxConcurrentRequests?: number;
  readonly architecture: LambdaArchitecture;
}

/**
 * A guardrail word list shipped in the gateway function's code bundle: the file named by
 * `[guardrails.rules.<rule>] words`, copied to `bundledPath` under the code root, which is
 * what the rule's `words` says in AIGW_CONFIG.
 */
export interface GuardrailWordList {
  readonly rule: string;
  /** Absolute path of the file at synth. */
  readonly source: string;
  /** `guardrails/<rule>.txt`, relative to the function's code root. */
  readonly bundledPath: string;
}

/** Where word lists sit in the gateway function's code bundle. */
export const BUNDLED_WORD_LIST_DIR = 'guardrails';

export interface DeployConfig {
  /** The first region is the primary: it holds the table (replicated to the others) and the dashboard. */
  readonly regions: readonly string[];
  readonly architecture: LambdaArchitecture;
  /** Instances reserved for (and capped at) the gateway in each region; undefined: no reservation. */
  readonly gatewayReservedConcurrency?: number;
  /** Refuse the default *.cloudfront.net certificate, whose viewer policy allows TLSv1. */
  readonly requireTls12: boolean;
  readonly alarmEmail?: string;
  readonly dailySpendAlarmUsd: number;
  readonly keyBudgetAlertPercents: readonly number[];
  readonly logRetentionDays: number;
  readonly originSecretRotation: number;
  /**
   * Gateways in the other regions send admission writes to the primary region's replica: limits
   * exact across regions, one cross-region round trip per write. False: per-region limits.
   */
  readonly limitsInPrimaryRegion: boolean;
  /** Custom domain of the CloudFront distribution, with its ACM certificate (us-east-1). */
  readonly customDomain?: { readonly domainName: string; readonly certificateArn: string };
  readonly models: readonly ModelDeployment[];
  /**
   * The sections of aigw.toml the gateway function applies (AIGW_CONFIG), as compact TOML;
   * empty when the file sets none.
   */
  readonly gatewayToml: string;
  /**
   * Secrets Manager secrets (names or ARNs) of the [[models]] upstreams' API keys, which the
   * gateway function reads at cold start and may read nothing else of.
   */
  readonly upstreamKeySecrets: readonly string[];
  /**
   * The guardrail word lists the gateway function's bundle carries (too big for the 4 KB
   * environment AIGW_CONFIG travels in), each already checked readable at synth.
   */
  readonly gatewayWordLists: readonly GuardrailWordList[];
}

/** What the rest of aigw.toml tells the deployment. */
export interface DeployContext {
  /** [admission] budget_alert_percents: the percents whose crossings the gateway counts. */
  readonly budgetAlertPercents?: readonly number[];
  readonly gatewayToml?: string;
  readonly upstreamKeySecrets?: readonly string[];
  readonly gatewayWordLists?: readonly GuardrailWordList[];
}

const DEFAULT_BUDGET_ALERT_PERCENTS = [50, 80, 100];

function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : `${out}.${String(part)}`),
    'deploy',
  );
}

/** 0 in aigw.toml means no reservation at all (Lambda's own 0 would mean "never run"). */
function reservation(configured: number): number | undefined {
  return configured === 0 ? undefined : configured;
}

/** Validates the raw `[deploy]` table (snake_case, as in aigw.toml) into a typed DeployConfig. */
export function deployConfigFrom(raw: unknown, context: DeployContext = {}): DeployConfig {
  const result = deploySchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new DeployConfigError(`${issuePath(issue.path)}: ${issue.message}`);
  }
  const deploy = result.data;
  const counted = context.budgetAlertPercents ?? DEFAULT_BUDGET_ALERT_PERCENTS;
  const alarmed = deploy.key_budget_alert_percents ?? counted;
  const uncounted = alarmed.find((percent) => !counted.includes(percent));
  if (uncounted !== undefined) {
    throw new DeployConfigError(
      `deploy.key_budget_alert_percents: ${uncounted} is not in [admission] budget_alert_percents ` +
        `(${counted.join(', ')}), so the gateway never counts it and the alarm could never fire`,
    );
  }
  return {
    regions: deploy.regions,
    architecture: deploy.architecture,
    gatewayReservedConcurrency: reservation(deploy.gateway_reserved_concurrency),
    requireTls12: deploy.require_tls12,
    alarmEmail: deploy.alarm_email,
    dailySpendAlarmUsd: deploy.daily_spend_alarm_usd,
    keyBudgetAlertPercents: alarmed,
    logRetentionDays: deploy.log_retention_days,
    originSecretRotation: deploy.origin_secret_rotation,
    limitsInPrimaryRegion: deploy.limits_in_primary_region,
    customDomain:
      deploy.domain_name !== undefined && deploy.certificate_arn !== undefined
        ? { domainName: deploy.domain_name, certificateArn: deploy.certificate_arn }
        : undefined,
    models: deploy.models.map((model) => ({
      name: model.name,
      version: model.version,
      memoryMb: model.memory_mb,
      ephemeralStorageMb: model.ephemeral_storage_mb,
      timeoutSeconds: model.timeout_seconds,
      reservedConcurrency: reservation(model.reserved_concurrency),
      maxConcurrentRequests: reservation(model.max_concurrent_requests ?? model.reserved_concurrency),
      architecture: model.architecture ?? deploy.architecture,
      contextLength: model.context_length,
      price: {
        inputMicrosPerMillionTokens: model.input_usd_per_million_tokens,
        outputMicrosPerMillionTokens: model.output_usd_per_million_tokens,
      },
      maxTokens: model.max_tokens,
    })),
    gatewayToml: context.gatewayToml ?? '',
    upstreamKeySecrets: context.upstreamKeySecrets ?? [],
    gatewayWordLists: context.gatewayWordLists ?? [],
  };
}

// [model] and [performance] only apply to a local `aigw serve`; [deploy] is this file's.
const LOCAL_ONLY_SECTIONS = ['deploy', 'model', 'performance'];

/**
 * Reads the deployment from an aigw.toml text: `[deploy]`, plus the sections the gateway function
 * will apply. The whole file is validated by src/config first, so a mistake anywhere fails the
 * synth rather than the deployed gateway's cold start.
 */
export function parseDeployConfig(tomlText: string, source = 'aigw.toml'): DeployConfig {
  let document: Record<string, unknown>;
  let parsed: AigwConfig;
  try {
    parsed = parseConfig(tomlText, {}, source);
    document = parseToml(tomlText);
  } catch (error) {
    const reason = error instanceof ConfigError ? error.message : `${source} is not valid TOML: ${(error as Error).message}`;
    throw new DeployConfigError(reason);
  }
  const gatewaySections = Object.fromEntries(
    Object.entries(document).filter(([section]) => !LOCAL_ONLY_SECTIONS.includes(section)),
  );
  // Deployed, a local package is a [[deploy.models]] function; only upstreams travel to the gateway.
  const upstreams = (parsed.models ?? []).map((entry, index) => ({ entry, index })).filter(({ entry }) => entry.base_url !== undefined);
  const withEnvKey = upstreams.find(({ entry }) => entry.api_key_env !== undefined);
  if (withEnvKey) {
    throw new DeployConfigError(
      `models[${withEnvKey.index}].api_key_env: the deployed gateway reads an upstream's key from Secrets Manager; set api_key_secret (the secret's name or ARN)`,
    );
  }
  if (document.models !== undefined) {
    const raw = document.models as Record<string, unknown>[];
    if (upstreams.length > 0) gatewaySections.models = upstreams.map(({ index }) => raw[index]);
    else delete gatewaySections.models;
  }
  const gatewayWordLists = bundleWordLists(gatewaySections);
  return deployConfigFrom(document.deploy, {
    budgetAlertPercents: parsed.admission.budget_alert_percents,
    gatewayToml: stringifyToml(gatewaySections),
    upstreamKeySecrets: upstreams.flatMap(({ entry }) => (entry.api_key_secret === undefined ? [] : [entry.api_key_secret])),
    gatewayWordLists,
  });
}

/**
 * The gateway function has no access to the files beside aigw.toml, and a word list of thousands
 * of terms would not fit the environment's 4 KB: each list (`words = "file"`, a path relative to
 * the working directory, as for `aigw serve`) is read here, so an unreadable one fails the synth,
 * and ships in the function's code bundle; the rule's `words` then names the bundled copy,
 * relative to the function's code root. Inline `terms` stay in AIGW_CONFIG.
 */
function bundleWordLists(sections: Record<string, unknown>): GuardrailWordList[] {
  const rules = (sections.guardrails as { rules?: Record<string, Record<string, unknown>> } | undefined)?.rules ?? {};
  const lists: GuardrailWordList[] = [];
  for (const [name, rule] of Object.entries(rules)) {
    if (typeof rule.words !== 'string') continue;
    const source = resolve(rule.words);
    try {
      readFileSync(source);
    } catch (error) {
      throw new DeployConfigError(`guardrails.rules.${name}.words: cannot read ${rule.words}: ${(error as Error).message}`);
    }
    // Rule names are letters, digits, "_" and "-" (src/config/guardrails-schema.ts): safe as a file
    // name, unless two differ only in case and the bundle is built on a case-insensitive disk.
    const bundledPath = `${BUNDLED_WORD_LIST_DIR}/${name}.txt`;
    const clash = lists.find((list) => list.rule.toLowerCase() === name.toLowerCase());
    if (clash) {
      throw new DeployConfigError(`guardrails.rules.${name}.words: rule names "${clash.rule}" and "${name}" differ only in case, and both have a word list; rename one`);
    }
    lists.push({ rule: name, source, bundledPath });
    rule.words = bundledPath;
  }
  return lists;
}

/** Loads the deployment settings; a missing file means every default. */
export function loadDeployConfig(path = 'aigw.toml'): DeployConfig {
  if (!existsSync(path)) return deployConfigFrom({});
  return parseDeployConfig(readFileSync(path, 'utf8'), path);
}
