// OpenTelemetry over OTLP/HTTP (JSON): one span and a set of metric points per finished request,
// named by the GenAI semantic conventions, plus aigw's own (cost, cache, rejections, guardrails).
// Made from the request's log line after the response, so the request path never waits on it.
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVICE_NAME, ATTR_URL_PATH } from '@opentelemetry/semantic-conventions';
import type { RequestLine } from './request-log.js';
import { rejectionReason } from './request-metrics.js';

// The GenAI conventions are still "incubating": OpenTelemetry asks users to copy the names, not
// import them from the unstable entry point.
export const GEN_AI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  tokenType: 'gen_ai.token.type',
  tokenUsage: 'gen_ai.client.token.usage',
  operationDuration: 'gen_ai.client.operation.duration',
  timeToFirstToken: 'gen_ai.server.time_to_first_token',
  timePerOutputToken: 'gen_ai.server.time_per_output_token',
} as const;

export const AIGW_METRIC = {
  costMicroUsd: 'aigw.cost',
  cacheRequests: 'aigw.cache.requests',
  rejections: 'aigw.rejections',
  guardrailHits: 'aigw.guardrail.hits',
} as const;

export interface OtlpOptions {
  /** Collector base URL, e.g. http://127.0.0.1:4318 (/v1/traces and /v1/metrics are added). */
  endpoint: string;
  headers?: Record<string, string>;
  serviceName: string;
  /** How often metrics are pushed; a Lambda handler flushes after each request instead. */
  exportIntervalMs?: number;
  /** Flush spans and metrics after every request (Lambda: the process may freeze right after). */
  flushEachRequest?: boolean;
}

export interface OtlpTelemetry {
  /** Records one finished request; resolves when it is handed over (or exported, with flushEachRequest). */
  record(line: RequestLine): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const OPERATIONS: Record<string, string> = { '/v1/chat/completions': 'chat', '/v1/completions': 'text_completion', '/v1/generate': 'chat' };

export function otlpTelemetry(options: OtlpOptions): OtlpTelemetry {
  const base = options.endpoint.replace(/\/+$/, '');
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName });
  const tracerProvider = new TracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${base}/v1/traces`, headers: options.headers }) })],
  });
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics`, headers: options.headers, temporalityPreference: AggregationTemporality.DELTA }),
    exportIntervalMillis: options.exportIntervalMs ?? 10_000,
  });
  const meterProvider = new MeterProvider({ resource, readers: [reader] });
  const tracer = tracerProvider.getTracer('aigw');
  const meter = meterProvider.getMeter('aigw');

  const seconds = { unit: 's' };
  const duration = meter.createHistogram(GEN_AI.operationDuration, { ...seconds, description: 'GenAI operation duration' });
  const tokens = meter.createHistogram(GEN_AI.tokenUsage, { unit: '{token}', description: 'Input and output tokens used' });
  const ttft = meter.createHistogram(GEN_AI.timeToFirstToken, { ...seconds, description: 'Time to generate the first token' });
  const perToken = meter.createHistogram(GEN_AI.timePerOutputToken, { ...seconds, description: 'Time per output token after the first' });
  const cost = meter.createCounter(AIGW_METRIC.costMicroUsd, { unit: 'u[USD]', description: 'Charged cost in micro-dollars' });
  const cache = meter.createCounter(AIGW_METRIC.cacheRequests, { unit: '{request}', description: 'Generation requests by cache status' });
  const rejections = meter.createCounter(AIGW_METRIC.rejections, { unit: '{request}', description: 'Requests refused, by reason' });
  const guardrailHits = meter.createCounter(AIGW_METRIC.guardrailHits, { unit: '{request}', description: 'Requests a guardrail rule matched, by rule' });

  const flush = async () => {
    await Promise.all([tracerProvider.forceFlush(), meterProvider.forceFlush()]);
  };

  return {
    async record(line) {
      const reason = rejectionReason(line);
      if (reason) rejections.add(1, { 'aigw.rejection.reason': reason });
      const operation = typeof line.path === 'string' ? OPERATIONS[line.path] : undefined;
      if (operation) {
        const attributes: Attributes = {
          [GEN_AI.operationName]: operation,
          [GEN_AI.providerName]: 'aigw',
          ...(typeof line.model === 'string' ? { [GEN_AI.requestModel]: line.model } : {}),
          ...(typeof line.modelVersion === 'string' ? { [GEN_AI.responseModel]: line.modelVersion } : {}),
          ...(line.status >= 400 ? { [ATTR_ERROR_TYPE]: String(line.errorCode ?? line.status) } : {}),
        };
        const end = Date.now();
        const span = tracer.startSpan(`${operation} ${line.model ?? ''}`.trim(), { kind: SpanKind.SERVER, startTime: end - line.latencyMs, attributes });
        span.setAttributes({
          [ATTR_HTTP_REQUEST_METHOD]: String(line.method ?? 'POST'),
          [ATTR_URL_PATH]: String(line.path),
          [ATTR_HTTP_RESPONSE_STATUS_CODE]: line.status,
          'aigw.request_id': String(line.requestId ?? ''),
          ...(typeof line.keyId === 'string' ? { 'aigw.key_id': line.keyId } : {}),
          ...(line.promptTokens !== undefined ? { [GEN_AI.inputTokens]: line.promptTokens } : {}),
          ...(line.completionTokens !== undefined ? { [GEN_AI.outputTokens]: line.completionTokens } : {}),
          ...(typeof line.finishReason === 'string' ? { [GEN_AI.responseFinishReasons]: [line.finishReason] } : {}),
          ...(line.costMicros !== undefined ? { 'aigw.cost_micro_usd': line.costMicros } : {}),
          ...(line.cache ? { 'aigw.cache.status': line.cache } : {}),
          ...(line.ttftMs !== undefined ? { 'aigw.time_to_first_token_ms': line.ttftMs } : {}),
          ...guardrailAttributes(line.guardrails),
        });
        if (line.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end(end);

        duration.record(line.latencyMs / 1000, attributes);
        if (line.promptTokens) tokens.record(line.promptTokens, { ...attributes, [GEN_AI.tokenType]: 'input' });
        if (line.completionTokens) tokens.record(line.completionTokens, { ...attributes, [GEN_AI.tokenType]: 'output' });
        if (line.ttftMs !== undefined) {
          ttft.record(line.ttftMs / 1000, attributes);
          if (line.completionTokens && line.completionTokens > 1) perToken.record((line.latencyMs - line.ttftMs) / 1000 / (line.completionTokens - 1), attributes);
        }
        if (line.costMicros) cost.add(line.costMicros, attributes);
        if (line.cache) cache.add(1, { ...attributes, 'aigw.cache.status': line.cache });
        const outcome = line.guardrails as { rules?: string[] } | undefined;
        for (const rule of outcome?.rules ?? []) guardrailHits.add(1, { ...attributes, 'aigw.guardrail.rule': rule });
      }
      if (options.flushEachRequest) await flush();
    },
    flush,
    async shutdown() {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

function guardrailAttributes(value: unknown): Attributes {
  const outcome = value as { input?: string; output?: string; rules?: string[] } | undefined;
  if (!outcome) return {};
  return { 'aigw.guardrail.input': outcome.input ?? 'pass', 'aigw.guardrail.output': outcome.output ?? 'pass', 'aigw.guardrail.rules': outcome.rules ?? [] };
}
