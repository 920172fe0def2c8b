import type { ModelPrice } from '../admission/pricing.js';
import type { ChatMessage, GenerationEvent, GenerationOptions } from '../engine/index.js';

/**
 * What the client asked for, already validated: chat messages or a plain-text prompt. With
 * `continueFinalMessage` the last message is the start of the assistant's reply, to be continued
 * (vLLM's field of that name; a fallback chain uses it after a broken stream).
 */
export type GenerationInput =
  | { kind: 'chat'; messages: readonly ChatMessage[]; continueFinalMessage?: boolean }
  | { kind: 'text'; prompt: string };

export type GenerationParams = Omit<GenerationOptions, 'signal' | 'ignoreEos'>;

/** A request that fits the model: its token counts are known before any generation runs. */
export interface PreparedGeneration {
  promptTokens: number;
  /** The most completion tokens it may produce (max_tokens, or what is left of the context). */
  maxTokens: number;
  /** Runs the generation; aborting the signal stops it within one decoder step. */
  run(signal: AbortSignal): AsyncIterable<GenerationEvent>;
  /** The model version that will serve, when the backend picks it per request (a route); the cache keys by it. */
  version?: string;
  /** What admission reserves when more than the prompt and maxTokens at `price` may be spent (a fallback chain). */
  reserveMicros?: number;
  /** What the run actually cost, when it used more than one price (a fallback chain); read once the run has ended. */
  spentMicros?(): number;
  /**
   * The version that wrote the whole answer, when it may not be `version` (a fallback chain);
   * undefined when several did. Read once the run has ended.
   */
  servedBy?(): string | undefined;
  /**
   * The version that wrote the answer's first token, when it may not be `version` (a fallback
   * chain): what the response names. Read once the first token is out.
   */
  startedBy?(): string | undefined;
}

/** What a request brings besides its input, for backends that route on it. */
export interface PrepareContext {
  headers: Headers;
  /** Adds fields to the request's log line (route decisions, fallbacks). */
  report?(fields: Record<string, unknown>): void;
  /**
   * A route's target through the alias of that name, when one exists (a release or canary of the
   * target), with this caller's sticky assignment; undefined when the name is no alias.
   */
  resolveAlias?(name: string): Promise<ModelBackend | undefined>;
}

/**
 * One servable model behind a public model id. Preparing is separate from running so the
 * gateway can reject, price and admit a request before any model work starts.
 */
export interface ModelBackend {
  /** The public model id clients send (an alias a deployment may point at another version). */
  readonly id: string;
  /** The exact model version behind the id, e.g. `qwen2.5-0.5b@3`: cache entries are keyed by it. */
  readonly version: string;
  /** Integer micro-dollars per million tokens. */
  readonly price: ModelPrice;
  /** Unix seconds, for GET /v1/models. */
  readonly created: number;
  readonly ownedBy: string;
  readonly contextLength: number;
  /** Whether a chat input with `continueFinalMessage` can be served; a text prompt any backend can continue. */
  readonly continuesChat?: boolean;
  prepare(input: GenerationInput, params: GenerationParams, context?: PrepareContext): Promise<PreparedGeneration>;
}
