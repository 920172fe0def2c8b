// The shape of aigw.toml: every section and key with its default and its one-line complaint.
// Sections and keys are strict, so a typo fails at start instead of being silently ignored.

import { z } from 'zod';
import { auditSection, guardrailsSection } from './guardrails-schema.js';

const integer = (min: number, max: number) => {
  const message = `expected an integer between ${min} and ${max}`;
  return z
    .number({ error: message })
    .int({ error: message })
    .min(min, { error: message })
    .max(max, { error: message });
};

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.map((v) => `"${v}"`).join(', ')}` });

const text = (what: string) => z.string({ error: `expected ${what}` });
const nonEmptyText = (what: string) => text(what).min(1, { error: `expected ${what}` });
const section = (name: string) => ({ error: `expected a table ([${name}])` });
const flag = () => z.boolean({ error: 'expected true or false' });

const origin = z
  .string({ error: 'expected a list of origins such as "https://app.example.com" or "*"' })
  .refine((value) => value === '*' || /^https?:\/\/[^/\s]+$/.test(value), {
    error: 'expected an origin such as "https://app.example.com" (scheme and host, no path) or "*"',
  });

const url = z
  .string({ error: 'expected an http(s) URL or "" (empty)' })
  .refine((value) => value === '' || /^https?:\/\/[^\s]+$/.test(value), {
    error: 'expected an http(s) URL such as "http://127.0.0.1:8000", or "" (empty)',
  });

/** transformers.js dtype names, as found in Optimum file names (`model_q4.onnx`). */
export const PRECISIONS = ['auto', 'fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;

const modelSection = z.strictObject(
  {
    name: nonEmptyText('a model name').default('aigw-tiny'),
    format: oneOf(['auto', 'optimum', 'genai']).default('auto'),
    max_tokens: integer(1, 1_048_576).default(256),
    path: nonEmptyText('a model package folder').default('.aigw/models/aigw-tiny'),
    /** A Hugging Face Hub model id (owner/name[@revision]) that `aigw serve` pulls and serves instead of path. */
    pull: text('a Hugging Face Hub model id').default(''),
    max_concurrent_requests: integer(0, 1_000_000).default(0),
  },
  section('model'),
);

const performanceSection = z.strictObject(
  {
    batch_size: integer(1, 1024).default(4),
    precision: oneOf(PRECISIONS).default('auto'),
    threads: integer(0, 1024).default(0),
  },
  section('performance'),
);

const monitoringSection = z.strictObject(
  {
    log_level: oneOf(['debug', 'info', 'warn', 'error']).default('info'),
    metrics: oneOf(['emf', 'off']).default('emf'),
    /** An OTLP/HTTP collector (e.g. "http://127.0.0.1:4318"): spans and metrics go there too; "" for none. */
    otlp_endpoint: url.default(''),
    /** Headers sent with every OTLP request, e.g. { authorization = "Bearer ..." }. */
    otlp_headers: z.record(z.string(), z.string({ error: 'expected a text' }), { error: 'expected a table of header = "value"' }).default(() => ({})),
    /** The OpenTelemetry service.name of the gateway's spans and metrics. */
    service_name: nonEmptyText('a service name').default('aigw'),
  },
  section('monitoring'),
);

const gatewaySection = z.strictObject(
  {
    host: nonEmptyText('a host name or IP address').default('127.0.0.1'),
    port: integer(1, 65_535).default(8787),
    allowed_origins: z.array(origin, { error: 'expected a list of origins' }).default(() => []),
    max_request_bytes: integer(1_024, 1_073_741_824).default(1_048_576),
    log_prompts: flag().default(false),
  },
  section('gateway'),
);

const dynamodbSection = z.strictObject(
  {
    endpoint: url.default(''),
    region: nonEmptyText('an AWS region such as "us-east-1"').default('us-east-1'),
    table: text('a table name')
      .regex(/^[A-Za-z0-9_.-]{3,255}$/, { error: 'expected 3 to 255 letters, digits, "_", "-" or "."' })
      .default('aigw'),
    data_dir: nonEmptyText('a folder').default('.aigw/dynamodb'),
    timeout_ms: integer(50, 60_000).default(1000),
  },
  section('dynamodb'),
);

const admissionSection = z.strictObject(
  {
    lease_seconds: integer(5, 86_400).default(900),
    fail_open: flag().default(false),
    budget_alert_percents: z
      .array(integer(1, 1000), { error: 'expected a list of percents such as [50, 80, 100]' })
      .default(() => [50, 80, 100]),
  },
  section('admission'),
);

const cacheSection = z.strictObject(
  {
    ttl: integer(0, 31_536_000).default(3600),
    shared: flag().default(false),
    max_entry_bytes: integer(1_024, 390_000).default(350_000),
  },
  section('cache'),
);

// A route or fallback target: a served model, an alias or `name@version`.
const routeTarget = (what: string) => nonEmptyText(what);

const routeRuleSchema = z
  .strictObject(
    {
      name: nonEmptyText('a rule name for logs and metrics').optional(),
      target: routeTarget('the model this rule sends requests to'),
      prompt_tokens_over: integer(0, 10_000_000).optional(),
      max_tokens_over: integer(0, 10_000_000).optional(),
      matches: text('a regular expression')
        .refine(
          (source) => {
            try {
              new RegExp(source, 'iu');
              return true;
            } catch {
              return false;
            }
          },
          { error: 'expected a regular expression that compiles (JavaScript syntax, matched ignoring case)' },
        )
        .optional(),
      words: z.array(nonEmptyText('a word'), { error: 'expected a list of words' }).min(1, { error: 'expected at least one word' }).optional(),
      header: nonEmptyText(`a value of the x-aigw-route header`).optional(),
    },
    { error: 'expected a rule table ([[routing.routes.<name>.rules]])' },
  )
  .refine((rule) => ['prompt_tokens_over', 'max_tokens_over', 'matches', 'words', 'header'].filter((k) => rule[k as keyof typeof rule] !== undefined).length === 1, {
    error: 'expected exactly one of prompt_tokens_over, max_tokens_over, matches, words or header',
  });

const routeSchema = z.strictObject(
  {
    default: routeTarget('the model requests go to when no rule matches'),
    rules: z.array(routeRuleSchema, { error: 'expected a list of rules' }).default(() => []),
  },
  { error: 'expected a route table ([routing.routes.<name>])' },
);

const routingSection = z.strictObject(
  {
    first_token_timeout_ms: integer(100, 900_000).default(30_000),
    stall_timeout_ms: integer(100, 900_000).default(15_000),
    breaker_failure_threshold: integer(1, 1000).default(3),
    breaker_cooldown_seconds: integer(1, 86_400).default(30),
    routes: z.record(z.string(), routeSchema, { error: 'expected tables [routing.routes.<name>]' }).default(() => ({})),
    fallbacks: z
      .record(z.string(), z.array(routeTarget('a model name'), { error: 'expected a list of model names' }), {
        error: 'expected a table of model → list of fallback models ([routing.fallbacks])',
      })
      .default(() => ({})),
  },
  section('routing'),
);

/** US dollars as a decimal string ("2.50") or number, to integer micro-dollars, exactly. */
export const usdMicros = z
  .union([z.string(), z.number()], { error: 'expected dollars such as "2.50"' })
  .transform((value, ctx) => {
    const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(String(value).trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'expected dollars such as "2.50" (at most 6 decimals)' });
      return z.NEVER;
    }
    return Number(match[1]) * 1_000_000 + Number((match[2] ?? '').padEnd(6, '0'));
  });

// A model name is what clients send; "@" separates it from the version (`qwen@4`).
const modelName = nonEmptyText('a model name').regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, {
  error: 'expected a model name of letters, digits, ".", "_", ":", "/" or "-" (no "@": it separates the version)',
});
const modelVersion = nonEmptyText('a version').regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, {
  error: 'expected a version of letters, digits, ".", "_", ":" or "-"',
});

/**
 * One `[[models]]` entry: a local ONNX package (`path`) or an OpenAI-compatible upstream
 * (`base_url`). An upstream's key is named, never written here: `api_key_env` locally, or
 * `api_key_secret` (Secrets Manager) for the deployed gateway.
 */
const modelEntry = z
  .strictObject(
    {
      name: modelName,
      // Local packages default to their manifest's version; upstreams to the upstream model's name.
      version: modelVersion.optional(),
      path: nonEmptyText('a model package folder').optional(),
      format: oneOf(['auto', 'optimum', 'genai']).default('auto'),
      base_url: url.refine((value) => value !== '', { error: 'expected an http(s) URL' }).optional(),
      upstream_model: nonEmptyText('the model name the upstream expects').optional(),
      api_key_env: text('an environment variable name')
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name such as "BEDROCK_API_KEY"' })
        .optional(),
      api_key_secret: nonEmptyText('a Secrets Manager secret name or ARN').optional(),
      // Only so the mistake gets a clear message instead of "unknown key".
      api_key: z.never({ error: 'an API key never goes in aigw.toml: put it in an environment variable and name it with api_key_env' }).optional(),
      context_length: integer(1, 16_777_216).optional(),
      input_usd_per_million_tokens: usdMicros.optional(),
      output_usd_per_million_tokens: usdMicros.optional(),
      max_tokens: integer(1, 1_048_576).optional(),
      max_concurrent_requests: integer(0, 1_000_000).default(0),
      timeout_ms: integer(100, 900_000).optional(),
    },
    { error: 'expected a table of model settings ([[models]])' },
  )
  .superRefine((entry, ctx) => {
    const problem = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if ((entry.path === undefined) === (entry.base_url === undefined)) {
      problem(entry.path === undefined ? 'path' : 'base_url', 'give either path (a local model package) or base_url (an OpenAI-compatible upstream), not both');
      return;
    }
    if (entry.base_url === undefined) {
      for (const key of ['upstream_model', 'api_key_env', 'api_key_secret', 'timeout_ms', 'context_length'] as const) {
        if (entry[key] !== undefined) problem(key, `${key} is for an upstream (base_url); a local package has its own (manifest.json)`);
      }
      return;
    }
    if (entry.format !== 'auto') problem('format', 'format is for a local package (path)');
    if (entry.api_key_env !== undefined && entry.api_key_secret !== undefined) problem('api_key_secret', 'give api_key_env or api_key_secret, not both');
    for (const key of ['context_length', 'input_usd_per_million_tokens', 'output_usd_per_million_tokens'] as const) {
      if (entry[key] === undefined) problem(key, `an upstream needs ${key} (the gateway admits and prices requests before calling it)`);
    }
  });

export type ModelEntryConfig = z.output<typeof modelEntry>;

const modelsSection = z
  .array(modelEntry, { error: 'expected [[models]] tables' })
  .superRefine((entries, ctx) => {
    const seen = new Set<string>();
    entries.forEach((entry, index) => {
      const id = `${entry.name}@${entry.version ?? '(manifest version)'}`;
      if (entry.version !== undefined && seen.has(id)) ctx.addIssue({ code: 'custom', path: [index, 'version'], message: `${id} is listed twice` });
      seen.add(id);
    });
  });

const count = () => integer(0, Number.MAX_SAFE_INTEGER).optional();

/** A plan's limits; a key may override any of them. Absent means unlimited. */
const planSchema = z.strictObject(
  {
    requests_per_minute: count(),
    tokens_per_minute: count(),
    requests_per_month: count(),
    max_concurrent_requests: count(),
    budget_usd_per_day: usdMicros.optional(),
    budget_usd_per_month: usdMicros.optional(),
    tokens_per_day: count(),
    tokens_per_month: count(),
  },
  { error: 'expected a table of plan limits ([plans.<name>])' },
);

export type PlanConfig = z.output<typeof planSchema>;

/**
 * Plan limits given as text (`aigw keys create --limit requests_per_minute=10`), validated by the
 * same rules as aigw.toml's [plans.*] tables.
 */
export function parsePlanLimits(table: Record<string, string>): PlanConfig {
  const typed = Object.fromEntries(Object.entries(table).map(([key, value]) => [key, key.startsWith('budget_usd') ? value : Number(value)]));
  const parsed = planSchema.safeParse(typed);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${issue.path.join('.') || 'limit'}: ${issue.message}`);
  }
  return parsed.data;
}

export const DEFAULT_PLANS: Record<string, PlanConfig> = {
  free: { requests_per_month: 1_000_000, requests_per_minute: 600, max_concurrent_requests: 8 },
};

const plansSection = z
  .record(z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a plan name of letters, digits, "_" or "-"' }), planSchema, {
    error: 'expected tables [plans.<name>]',
  })
  // The built-in plans stay unless the file redefines them by name.
  .transform((plans) => ({ ...DEFAULT_PLANS, ...plans }));

const aliasesSection = z.strictObject(
  {
    cache_seconds: integer(0, 300).default(2),
  },
  section('aliases'),
);

// `prefault({})` runs a missing section through its schema, so each key gets its own default.
export const configSchema = z.strictObject({
  model: modelSection.prefault({}),
  // Optional: without it the one [model] above is served (configuredModels in model-entries.ts).
  models: modelsSection.optional(),
  performance: performanceSection.prefault({}),
  monitoring: monitoringSection.prefault({}),
  gateway: gatewaySection.prefault({}),
  dynamodb: dynamodbSection.prefault({}),
  admission: admissionSection.prefault({}),
  cache: cacheSection.prefault({}),
  plans: plansSection.prefault({}),
  aliases: aliasesSection.prefault({}),
  routing: routingSection.prefault({}),
  guardrails: guardrailsSection.prefault({}),
  audit: auditSection.prefault({}),
  // `cdk deploy` reads [deploy] (infra/deploy-config.ts validates it); the gateway ignores it.
  deploy: z.record(z.string(), z.unknown(), { error: 'expected a table ([deploy])' }).optional(),
});

export type AigwConfig = z.output<typeof configSchema>;

/** Every key's default, from the schema itself; the repo's aigw.toml spells them out. */
export const CONFIG_DEFAULTS: AigwConfig = configSchema.parse({});
