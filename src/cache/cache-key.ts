// The response cache key: SHA-256 of a canonical JSON document naming everything that can change
// a generation's output, so two requests share an entry only when they must produce the same text.
//
// Key composition (version 1):
//
//   cacheKey = hex(SHA-256(utf8(canonicalJson({
//     v: 1,                          // bumped whenever this composition changes
//     model: "<modelVersion>",       // resolved version from the manifest (aigw-tiny@1), never the alias
//     scope: "key:<keyId>" | "shared",   // per API key unless [cache] shared = true
//     input: { kind: "chat", messages: [{ role, content }, ...] }   // in order, only role and content
//          | { kind: "text", prompt },
//     params: {                      // defaults filled in, so leaving a parameter out equals sending its default
//       maxTokens,                   // as resolved (max_tokens, or what is left of the context)
//       temperature (1), topP (1), topK (0), seed (absent when unset),
//       stop ([], empty strings dropped), presencePenalty (0), frequencyPenalty (0), repetitionPenalty (1)
//     }
//   }))))
//
// canonicalJson: object keys sorted by UTF-16 code units, no whitespace, numbers in JavaScript's
// shortest round-trip form (as JSON.stringify), undefined object fields dropped, arrays in order.
// Not in the key: `stream` and `stream_options`, which change only the response's framing, so
// streamed and non-streamed requests share entries (the cache stores generation events).
import { createHash } from 'node:crypto';
import type { GenerationInput, GenerationParams } from '../backends/model-backend.js';
import type { CacheConfig } from './cache-config.js';
import { CanonicalJsonError } from './errors.js';

export const CACHE_KEY_VERSION = 1;

export type CacheScope = 'shared' | `key:${string}`;

export interface CacheKeyInput {
  /** The model version that will serve the request, e.g. `aigw-tiny@1`. */
  modelVersion: string;
  scope: CacheScope;
  input: GenerationInput;
  /** maxTokens is required: the key must hold the resolved value, not the client's optional one. */
  params: GenerationParams & { maxTokens: number };
}

/** Per key unless the operator shares the cache; with API keys off there is no key to scope by. */
export function cacheScope(config: Pick<CacheConfig, 'shared'>, keyId: string | undefined): CacheScope {
  return config.shared || keyId === undefined ? 'shared' : `key:${keyId}`;
}

export function cacheKey(request: CacheKeyInput): string {
  const document = {
    v: CACHE_KEY_VERSION,
    model: request.modelVersion,
    scope: request.scope,
    input: keyedInput(request.input),
    params: keyedParams(request.params),
  };
  return createHash('sha256').update(canonicalJson(document), 'utf8').digest('hex');
}

function keyedInput(input: GenerationInput): object {
  if (input.kind === 'text') return { kind: 'text', prompt: input.prompt };
  const messages = input.messages.map((m) => ({ role: m.role, content: m.content }));
  return input.continueFinalMessage ? { kind: 'chat', messages, continueFinalMessage: true } : { kind: 'chat', messages };
}

// Mirrors the engine's defaults (sampler.ts, generate.ts): an omitted value and its default
// produce the same tokens, so they must produce the same key.
function keyedParams(params: CacheKeyInput['params']): object {
  return {
    maxTokens: params.maxTokens,
    temperature: params.temperature ?? 1,
    topP: params.topP ?? 1,
    topK: params.topK ?? 0,
    seed: params.seed,
    stop: (params.stop ?? []).filter((s) => s.length > 0),
    presencePenalty: params.presencePenalty ?? 0,
    frequencyPenalty: params.frequencyPenalty ?? 0,
    repetitionPenalty: params.repetitionPenalty ?? 1,
  };
}

/** Deterministic JSON: the same value always gives the same string, whatever its key order. */
export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // NaN and infinities have no JSON form; JSON.stringify would silently write null.
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`${path} is ${value}, which JSON cannot represent`);
      return JSON.stringify(value);
    case 'object':
      if (Array.isArray(value)) return encodeArray(value, path);
      if (!isPlainObject(value)) throw new CanonicalJsonError(`${path} is not a plain object`);
      return encodeObject(value, path);
    default:
      throw new CanonicalJsonError(`${path} is a ${typeof value}, which JSON cannot represent`);
  }
}

function encodeArray(items: readonly unknown[], path: string): string {
  const parts: string[] = [];
  for (let i = 0; i < items.length; i++) {
    // JSON.stringify would turn these into null: a different value, so refuse instead.
    if (items[i] === undefined) throw new CanonicalJsonError(`${path}[${i}] is undefined`);
    parts.push(encode(items[i], `${path}[${i}]`));
  }
  return `[${parts.join(',')}]`;
}

function encodeObject(object: Record<string, unknown>, path: string): string {
  const parts: string[] = [];
  for (const key of Object.keys(object).sort()) {
    if (object[key] === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${encode(object[key], `${path}.${key}`)}`);
  }
  return `{${parts.join(',')}}`;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
