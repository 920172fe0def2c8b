// What aigw.toml adds around the gateway in every runtime (aigw serve and the Lambda function):
// guardrail rules, an audit record per request, OpenTelemetry export. Built once per process.
import { randomBytes } from 'node:crypto';
import { AuditLog, appendRequestAudit, auditGuardrailConfig } from './audit/index.js';
import type { AigwConfig } from './config/index.js';
import type { GatewayOptions } from './gateway.js';
import { loadGuardrailPolicy } from './guardrails/index.js';
import type { Store } from './store/index.js';
import { otlpTelemetry, type RequestLine } from './telemetry/index.js';

export interface GatewayServices {
  /** Names this process in its audit records (a request stream's writer, an automatic rollback's actor). */
  instanceId: string;
  /** What createModelResolver needs to audit automatic rollbacks; undefined when auditing is off. */
  releaseAudit: { actor: string; retentionDays: number } | undefined;
  guardrails: GatewayOptions['guardrails'];
  onRequestFinished: ((line: RequestLine) => Promise<unknown>)[];
  /** Audits a guardrail configuration that differs from the last one recorded. */
  auditConfiguration(): Promise<void>;
  /** Writes what is still queued (audit records, spans, metrics) and stops exporting. */
  close(): Promise<void>;
}

export interface GatewayServicesOptions {
  /** Lambda: export after every request, as the process may freeze right after it. */
  flushEachRequest: boolean;
  /** Names this process's audit streams (a Lambda container, an aigw serve run). */
  instanceId?: string;
  readText?: (file: string) => string;
}

export function gatewayServices(config: AigwConfig, store: Store, options: GatewayServicesOptions): GatewayServices {
  const policy = loadGuardrailPolicy(config.guardrails, options.readText);
  const instance = options.instanceId ?? `gw-${randomBytes(6).toString('hex')}`;
  const audit = config.audit.enabled && config.audit.requests ? new AuditLog(store, { writer: instance, retentionDays: config.audit.retention_days }) : undefined;
  const otlp = config.monitoring.otlp_endpoint
    ? otlpTelemetry({
        endpoint: config.monitoring.otlp_endpoint,
        headers: config.monitoring.otlp_headers,
        serviceName: config.monitoring.service_name,
        flushEachRequest: options.flushEachRequest,
      })
    : undefined;
  const onRequestFinished: GatewayServices['onRequestFinished'] = [];
  if (audit) onRequestFinished.push((line) => appendRequestAudit(audit, line));
  if (otlp) onRequestFinished.push((line) => otlp.record(line));
  return {
    instanceId: instance,
    releaseAudit: config.audit.enabled ? { actor: instance, retentionDays: config.audit.retention_days } : undefined,
    guardrails: policy.ruleNames.length > 0 ? policy : undefined,
    onRequestFinished,
    async auditConfiguration() {
      if (!config.audit.enabled) return;
      await auditGuardrailConfig(store, policy.fingerprint, policy.ruleNames, { retentionDays: config.audit.retention_days, actor: instance });
    },
    async close() {
      await audit?.flush();
      await otlp?.shutdown();
    },
  };
}
