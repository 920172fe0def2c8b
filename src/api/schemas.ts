import type { SamplingParams } from '../engine/sampler.js';
import { z } from 'zod';
import { ApiError } from './errors.js';
import { describeValue, validationError, type CustomIssueParams } from './validation-errors.js';

export type ApiChatRole = 'system' | 'user' | 'assistant';

export interface ApiChatMessage {
  role: ApiChatRole;
  content: string;
}

/** Sampling and length fields, normalized to the engine's names. */
export interface SamplingFields extends SamplingParams {
  maxTokens?: number;
  stop: string[];
}

export interface ChatCompletionRequest extends SamplingFields {
  model: string;
  messages: ApiChatMessage[];
  stream: boolean;
  /** stream_options.include_usage; only ever true when stream is. */
  includeUsage: boolean;
  user?: string;
  /** vLLM's `continue_final_message`: the last (assistant) message is continued, not answered. */
  continueFinalMessage?: true;
}

export interface CompletionRequest extends SamplingFields {
  model: string;
  prompt: string;
  stream: boolean;
  includeUsage: boolean;
  user?: string;
}

/** `/v1/generate` mapped onto the chat shape; `model` falls back to the gateway's default. */
export interface GenerateRequest extends SamplingFields {
  model?: string;
  messages: ApiChatMessage[];
  stream: boolean;
  includeUsage: boolean;
}

// The engine's MAX_STOP_SEQUENCES (a test keeps them equal); importing generate.js here would
// load onnxruntime into every process that only validates requests.
export const MAX_STOP_SEQUENCES = 4;

function issue(code: string | null, message: string): { message: string; params: CustomIssueParams } {
  return { message, params: { code } };
}

const unsupportedValue = (message: string) => issue('unsupported_value', message);
const unsupportedParameter = (message: string) => issue('unsupported_parameter', message);

const isAbsent = (value: unknown) => value === undefined || value === null;
const isAbsentOrEmpty = (value: unknown) => isAbsent(value) || (Array.isArray(value) && value.length === 0);

// OpenAI accepts null for every optional field and treats it as absent; so do we.
const temperature = z.number().min(0).max(2).nullish();
const topP = z.number().min(0).max(1).nullish();
/** An integer with a lower bound; zod's own min check can't tell integer fields from decimal ones. */
const intAtLeast = (min: number) =>
  z.int().refine((v) => v >= min, issue('integer_below_min_value', `{value} is less than the minimum of ${min} - '{param}'`));
const maxTokens = intAtLeast(1).nullish();

const samplingShape = {
  // Changes the output, so it is refused rather than ignored (and never missing from a cache key).
  logit_bias: z
    .unknown()
    .refine(
      (bias) => isAbsent(bias) || (typeof bias === 'object' && bias !== null && Object.keys(bias).length === 0),
      unsupportedParameter("Invalid '{param}': logit_bias is not supported by this gateway."),
    )
    .optional(),
  temperature,
  top_p: topP,
  seed: z.int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(MAX_STOP_SEQUENCES)]).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  n: z
    .int()
    .refine((n) => n === 1, unsupportedValue("Invalid '{param}': only n=1 is supported by this gateway."))
    .nullish(),
  user: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  // Extensions beyond OpenAI's API, as vLLM names them.
  top_k: intAtLeast(0).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
};

type SamplingInput = z.output<z.ZodObject<typeof samplingShape>>;

function normalizeSampling(body: SamplingInput, maxTokensValue: number | null | undefined): SamplingFields {
  const stop = body.stop ?? [];
  return {
    maxTokens: maxTokensValue ?? undefined,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    seed: body.seed ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    stop: typeof stop === 'string' ? [stop] : stop,
  };
}

/** OpenAI rejects stream_options on a non-streamed request, with this message. */
function checkStreamOptions(body: SamplingInput, ctx: z.RefinementCtx): boolean {
  if (!isAbsent(body.stream_options) && body.stream !== true) {
    ctx.addIssue({
      code: 'custom',
      path: ['stream_options'],
      message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      params: { code: null } satisfies CustomIssueParams,
    });
    return false;
  }
  return true;
}

const ROLES: Record<string, ApiChatRole> = {
  system: 'system',
  developer: 'system', // OpenAI's newer name for system instructions; open models only know system.
  user: 'user',
  assistant: 'assistant',
};

const roleSchema = z.string().transform((role, ctx): ApiChatRole => {
  if (Object.hasOwn(ROLES, role)) return ROLES[role];
  if (role === 'tool' || role === 'function') {
    ctx.addIssue({
      code: 'custom',
      message: `Invalid '{param}': '${role}' messages are not supported, because this gateway has no tool or function calling.`,
      params: { code: 'unsupported_value' } satisfies CustomIssueParams,
    });
  } else {
    ctx.addIssue({ code: 'invalid_value', values: Object.keys(ROLES), input: role });
  }
  return z.NEVER;
});

const UNSUPPORTED_PART_TYPES = new Set(['image_url', 'input_audio', 'file', 'image', 'audio']);

/** A text part yields its text; anything that is not text is refused by name. */
const contentPartSchema = z.looseObject({ type: z.string() }).transform((part, ctx) => {
  if (part.type === 'text' || part.type === 'refusal') {
    const text = part[part.type];
    if (typeof text === 'string') return text;
    const missing = text === undefined;
    ctx.addIssue({
      code: 'custom',
      path: [part.type],
      input: text,
      message: missing ? "Missing required parameter: '{param}'." : "Invalid type for '{param}': expected a string, but got {got} instead.",
      params: { code: missing ? 'missing_required_parameter' : 'invalid_type' } satisfies CustomIssueParams,
    });
  } else if (UNSUPPORTED_PART_TYPES.has(part.type)) {
    ctx.addIssue({
      code: 'custom',
      path: ['type'],
      message: `Invalid '{param}': '${part.type}' content is not supported by this model; send text parts only.`,
      params: { code: 'unsupported_value' } satisfies CustomIssueParams,
    });
  } else {
    ctx.addIssue({ code: 'invalid_value', path: ['type'], values: ['text', 'refusal'], input: part.type });
  }
  return z.NEVER;
});

// Text parts are joined with newlines, as vLLM does: the template sees one string per message.
const contentSchema = z.union([z.string(), z.array(contentPartSchema).min(1).transform((parts) => parts.join('\n'))]);

const messageSchema = z
  .object({
    role: roleSchema,
    content: contentSchema.nullish(),
    tool_calls: z
      .unknown()
      .refine(isAbsentOrEmpty, unsupportedParameter("Invalid '{param}': tool calls are not supported by this gateway."))
      .optional(),
    function_call: z
      .unknown()
      .refine(isAbsent, unsupportedParameter("Invalid '{param}': function calls are not supported by this gateway."))
      .optional(),
  })
  .transform((message, ctx): ApiChatMessage => {
    if (message.content !== undefined && message.content !== null) return { role: message.role, content: message.content };
    // Only an assistant turn may come without content (OpenAI allows it alongside tool calls).
    if (message.role === 'assistant') return { role: 'assistant', content: '' };
    ctx.addIssue({
      code: 'custom',
      path: ['content'],
      input: message.content,
      message:
        message.content === null
          ? "Invalid type for '{param}': expected one of a string or an array, but got null instead."
          : "Missing required parameter: '{param}'.",
      params: { code: message.content === null ? 'invalid_type' : 'missing_required_parameter' } satisfies CustomIssueParams,
    });
    return z.NEVER;
  });

const chatCompletionSchema = z
  .object({
    model: z.string().min(1),
    messages: z.array(messageSchema).min(1),
    max_tokens: maxTokens,
    max_completion_tokens: maxTokens,
    ...samplingShape,
    logprobs: z
      .boolean()
      .refine((v) => v !== true, unsupportedValue("Invalid '{param}': logprobs are not supported by this gateway."))
      .nullish(),
    top_logprobs: z
      .unknown()
      .refine(isAbsent, unsupportedParameter("Invalid '{param}': logprobs are not supported by this gateway."))
      .optional(),
    tools: z
      .unknown()
      .refine(isAbsentOrEmpty, unsupportedParameter("Invalid '{param}': tools are not supported, because this gateway has no tool calling."))
      .optional(),
    functions: z
      .unknown()
      .refine(isAbsentOrEmpty, unsupportedParameter("Invalid '{param}': functions are not supported, because this gateway has no function calling."))
      .optional(),
    response_format: z
      .looseObject({ type: z.string() })
      .refine(
        (format) => format.type === 'text',
        unsupportedValue("Invalid '{param}': only the 'text' response format is supported by this gateway."),
      )
      .nullish(),
    continue_final_message: z.boolean().nullish(),
    add_generation_prompt: z.boolean().nullish(),
  })
  .transform((body, ctx): ChatCompletionRequest => {
    if (!checkStreamOptions(body, ctx)) return z.NEVER;
    const continueFinalMessage = body.continue_final_message === true;
    // vLLM's rules: continuing needs the assistant's partial reply last and no new generation prompt.
    if (continueFinalMessage && (body.add_generation_prompt === true || body.messages.at(-1)?.role !== 'assistant')) {
      ctx.addIssue({
        code: 'custom',
        path: ['continue_final_message'],
        input: true,
        message: "Invalid '{param}': continuing needs the last message to be the assistant's and add_generation_prompt false.",
        params: { code: 'invalid_value' } satisfies CustomIssueParams,
      });
      return z.NEVER;
    }
    if (!continueFinalMessage && body.add_generation_prompt === false) {
      ctx.addIssue({
        code: 'custom',
        path: ['add_generation_prompt'],
        input: false,
        message: "Invalid '{param}': false is only supported together with continue_final_message.",
        params: { code: 'unsupported_value' } satisfies CustomIssueParams,
      });
      return z.NEVER;
    }
    const stream = body.stream === true;
    return {
      model: body.model,
      messages: body.messages,
      // Both name the same limit; OpenAI's newer field wins when a client sends both.
      ...normalizeSampling(body, body.max_completion_tokens ?? body.max_tokens),
      stream,
      includeUsage: stream && body.stream_options?.include_usage === true,
      user: body.user ?? undefined,
      ...(continueFinalMessage ? { continueFinalMessage: true as const } : {}),
    };
  });

/** A prompt is one string; OpenAI's batch and token-array forms are refused by name. */
const promptSchema = z.unknown().transform((prompt, ctx): string => {
  const fail = (code: string, message: string) => {
    ctx.addIssue({ code: 'custom', input: prompt, message, params: { code } satisfies CustomIssueParams });
    return z.NEVER;
  };
  if (typeof prompt === 'string') return prompt;
  if (prompt === undefined) return fail('missing_required_parameter', "Missing required parameter: '{param}'.");
  if (!Array.isArray(prompt)) {
    return fail('invalid_type', "Invalid type for '{param}': expected one of a string or an array of one string, but got {got} instead.");
  }
  if (prompt.length === 0) {
    return fail('empty_array', "Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.");
  }
  if (prompt.every((p) => typeof p === 'string')) {
    if (prompt.length === 1) return prompt[0] as string;
    return fail('unsupported_value', "Invalid '{param}': only one prompt per request is supported by this gateway.");
  }
  if (prompt.every((p) => typeof p === 'number' || Array.isArray(p))) {
    return fail('unsupported_value', "Invalid '{param}': token arrays are not supported; send the prompt as a string.");
  }
  return fail('invalid_type', `Invalid type for '{param}': expected one of a string or an array of one string, but got an array holding ${describeValue(prompt.find((p) => typeof p !== 'string'))}.`);
});

/** OpenAI's legacy completions default to 16 tokens when max_tokens is absent. */
const DEFAULT_COMPLETION_MAX_TOKENS = 16;

const completionSchema = z
  .object({
    model: z.string().min(1),
    prompt: promptSchema,
    max_tokens: maxTokens,
    ...samplingShape,
    echo: z
      .boolean()
      .refine((v) => v !== true, unsupportedValue("Invalid '{param}': echo is not supported by this gateway."))
      .nullish(),
    best_of: z
      .int()
      .refine((v) => v === 1, unsupportedValue("Invalid '{param}': only best_of=1 is supported by this gateway."))
      .nullish(),
    suffix: z
      .string()
      .refine((v) => v === '', unsupportedParameter("Invalid '{param}': suffix is not supported by this gateway."))
      .nullish(),
    logprobs: z
      .unknown()
      .refine(isAbsent, unsupportedParameter("Invalid '{param}': logprobs are not supported by this gateway."))
      .optional(),
  })
  .transform((body, ctx): CompletionRequest => {
    if (!checkStreamOptions(body, ctx)) return z.NEVER;
    const stream = body.stream === true;
    return {
      model: body.model,
      prompt: body.prompt,
      ...normalizeSampling(body, body.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS),
      stream,
      includeUsage: stream && body.stream_options?.include_usage === true,
      user: body.user ?? undefined,
    };
  });

const generateSchema = z
  .object({
    model: z.string().min(1).nullish(),
    system: z.string().nullish(),
    user: z.string(),
    parameters: z
      .object({ temperature, top_p: topP, max_tokens: maxTokens })
      .nullish(),
    stream: z.boolean().nullish(),
  })
  .transform((body): GenerateRequest => {
    const messages: ApiChatMessage[] = [];
    if (body.system !== undefined && body.system !== null) messages.push({ role: 'system', content: body.system });
    messages.push({ role: 'user', content: body.user });
    return {
      model: body.model ?? undefined,
      messages,
      maxTokens: body.parameters?.max_tokens ?? undefined,
      temperature: body.parameters?.temperature ?? undefined,
      topP: body.parameters?.top_p ?? undefined,
      stop: [],
      stream: body.stream === true,
      includeUsage: false,
    };
  });

function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, `Invalid request body: expected a JSON object, but got ${describeValue(body)} instead.`, {
      code: 'invalid_type',
    });
  }
  const result = schema.safeParse(body, { reportInput: true });
  if (!result.success) throw validationError(result.error.issues);
  return result.data;
}

/** Validates a `/v1/chat/completions` body; throws ApiError 400 naming the first bad field. */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  return parseWith(chatCompletionSchema, body);
}

/** Validates a `/v1/completions` body; throws ApiError 400 naming the first bad field. */
export function parseCompletionRequest(body: unknown): CompletionRequest {
  return parseWith(completionSchema, body);
}

/** Validates a `/v1/generate` body; throws ApiError 400 naming the first bad field. */
export function parseGenerateRequest(body: unknown): GenerateRequest {
  return parseWith(generateSchema, body);
}
