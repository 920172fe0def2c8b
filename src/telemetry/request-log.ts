import type { GenerationInput } from '../backends/model-backend.js';
import type { FinishedRequest } from './request-metrics.js';

/** A request's whole log line: the metric fields plus whatever the pipeline set (ids, model, guardrails…). */
export type RequestLine = FinishedRequest & Record<string, unknown>;

/** The part of a logger the gateway needs; Powertools' Logger is one. */
export interface RequestLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
}

/**
 * Gathers the fields of one request's log line as the request moves through the pipeline and
 * writes them once, at the end. Prompt and completion text are kept only when logPrompts is on.
 */
export function requestLog(logger: RequestLogger, logPrompts: boolean, onFinish?: (fields: RequestLine) => void) {
  const fields: Record<string, unknown> = {};
  let firstTokenAt: number | undefined;
  let written = false;
  return {
    set(more: Record<string, unknown>): void {
      Object.assign(fields, more);
    },
    /** The request's key has log_prompts on: its texts are kept even where the gateway's is off. */
    allowPrompts(): void {
      logPrompts = true;
    },
    setPrompt(input: GenerationInput): void {
      if (logPrompts) fields.prompt = input.kind === 'chat' ? input.messages : input.prompt;
    },
    setCompletion(text: string): void {
      if (logPrompts) fields.completion = text;
    },
    /** Marks a generated token; the first one gives time to first token. */
    token(): void {
      firstTokenAt ??= performance.now();
    },
    finish(status: number, started: number): void {
      if (written) return;
      written = true;
      const latencyMs = round(performance.now() - started);
      const ttftMs = firstTokenAt === undefined ? undefined : round(firstTokenAt - started);
      const line = { ...fields, status, latencyMs, ttftMs };
      logger.info('request', line);
      onFinish?.(line as RequestLine);
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
