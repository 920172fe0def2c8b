import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiError,
  errorBody,
  errorResponse,
  invalidApiKey,
  invalidRequest,
  malformedJson,
  methodNotAllowed,
  missingApiKey,
  modelNotFound,
  notFound,
  payloadTooLarge,
  toApiError,
  unsupportedMediaType,
} from '../../src/api/errors.js';
import { renderChat } from '../../src/engine/chat-template.js';
import { EngineError, type EngineErrorCode } from '../../src/engine/errors.js';
import { validateSamplingParams } from '../../src/engine/sampler.js';
import { StopSequenceMatcher } from '../../src/engine/stop-sequences.js';
import { loadTokenizer } from '../../src/engine/tokenizer.js';
import { readManifest } from '../../src/models/manifest.js';

/** The error a real engine call throws, caught. */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('ApiError', () => {
  it('defaults type by status the way OpenAI does', () => {
    expect(new ApiError(400, 'x').type).toBe('invalid_request_error');
    expect(new ApiError(401, 'x').type).toBe('invalid_request_error');
    expect(new ApiError(404, 'x').type).toBe('invalid_request_error');
    expect(new ApiError(413, 'x').type).toBe('invalid_request_error');
    expect(new ApiError(429, 'x').type).toBe('requests');
    expect(new ApiError(500, 'x').type).toBe('server_error');
    expect(new ApiError(503, 'x').type).toBe('server_error');
  });

  it('keeps explicit type, code, param and headers', () => {
    const error = new ApiError(429, 'slow down', {
      type: 'tokens',
      code: 'rate_limit_exceeded',
      param: null,
      headers: { 'retry-after': '3' },
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('slow down');
    expect([error.status, error.type, error.code, error.param]).toEqual([429, 'tokens', 'rate_limit_exceeded', null]);
    expect(error.headers).toEqual({ 'retry-after': '3' });
  });

  it('has null code and param when not given', () => {
    const error = new ApiError(400, 'bad');
    expect(error.code).toBeNull();
    expect(error.param).toBeNull();
    expect(error.headers).toEqual({});
  });
});

describe('error helpers', () => {
  it('invalidRequest is a 400 with param and code', () => {
    const error = invalidRequest('nope', 'temperature', 'invalid_value');
    expect([error.status, error.param, error.code, error.message]).toEqual([400, 'temperature', 'invalid_value', 'nope']);
    expect(invalidRequest('bare').param).toBeNull();
  });

  it('modelNotFound uses OpenAI wording and code', () => {
    expect(errorBody(modelNotFound('gpt-9'))).toEqual({
      error: {
        message: 'The model `gpt-9` does not exist or you do not have access to it.',
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      },
    });
    expect(modelNotFound('gpt-9').status).toBe(404);
  });

  it('invalidApiKey is 401 invalid_api_key and does not echo any key', () => {
    const error = invalidApiKey();
    expect([error.status, error.type, error.code]).toEqual([401, 'invalid_request_error', 'invalid_api_key']);
    expect(error.message).toMatch(/^Incorrect API key provided/);
    expect(error.message).not.toMatch(/aigw-/);
  });

  it('missingApiKey is 401 with a null code and says how to send the key', () => {
    const error = missingApiKey();
    expect([error.status, error.type, error.code]).toEqual([401, 'invalid_request_error', null]);
    expect(error.message).toContain('Authorization: Bearer');
  });

  it('payloadTooLarge names the limit', () => {
    const error = payloadTooLarge(1_048_576);
    expect(error.status).toBe(413);
    expect(error.message).toContain('1048576 bytes');
  });

  it('unsupportedMediaType is 415', () => {
    expect(unsupportedMediaType().status).toBe(415);
    expect(unsupportedMediaType().message).toContain('application/json');
  });

  it('notFound and methodNotAllowed use OpenAI wording', () => {
    expect(notFound('/v1/nothing').message).toBe('Invalid URL (/v1/nothing)');
    expect(notFound('/v1/nothing', 'POST').message).toBe('Invalid URL (POST /v1/nothing)');
    expect(notFound('/v1/nothing').status).toBe(404);
    const error = methodNotAllowed('GET', '/v1/chat/completions', ['POST']);
    expect([error.status, error.message]).toEqual([405, 'Invalid method for URL (GET /v1/chat/completions)']);
    expect(error.headers).toEqual({ allow: 'POST' });
    expect(methodNotAllowed().status).toBe(405);
    expect(methodNotAllowed().headers).toEqual({});
  });

  it('malformedJson is a 400 with no param', () => {
    const error = malformedJson();
    expect([error.status, error.param, error.code]).toEqual([400, null, null]);
    expect(error.message).toContain('could not parse the JSON body');
  });
});

describe('errorResponse', () => {
  it('writes the OpenAI body as JSON with the status and all headers', async () => {
    const error = new ApiError(429, 'slow down', { code: 'rate_limit_exceeded', headers: { 'retry-after': '2' } });
    const response = errorResponse(error, { 'x-request-id': 'req_1' });
    expect(response.status).toBe(429);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('retry-after')).toBe('2');
    expect(response.headers.get('x-request-id')).toBe('req_1');
    expect(await response.json()).toEqual({
      error: { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' },
    });
  });

  it('cannot be talked into another content type by the caller', () => {
    const response = errorResponse(invalidRequest('x'), { 'content-type': 'text/plain' });
    expect(response.headers.get('content-type')).toBe('application/json');
  });
});

describe('toApiError', () => {
  let emptyDir: string;
  beforeAll(async () => {
    emptyDir = await mkdtemp(path.join(tmpdir(), 'aigw-api-errors-'));
  });
  afterAll(async () => {
    await rm(emptyDir, { recursive: true, force: true });
  });

  it('returns an ApiError unchanged', () => {
    const error = modelNotFound('m');
    expect(toApiError(error)).toBe(error);
  });

  it('maps context_length_exceeded to 400 with the prompt param', () => {
    const engine = new EngineError('context_length_exceeded', "This model's maximum context length is 64 tokens.");
    const chat = toApiError(engine);
    expect([chat.status, chat.code, chat.param, chat.type]).toEqual([400, 'context_length_exceeded', 'messages', 'invalid_request_error']);
    expect(chat.message).toBe("This model's maximum context length is 64 tokens.");
    expect(toApiError(engine, { promptParam: 'prompt' }).param).toBe('prompt');
  });

  it('maps invalid_generation_params to 400', () => {
    const error = toApiError(new EngineError('invalid_generation_params', 'the prompt is empty'));
    expect([error.status, error.message]).toEqual([400, 'the prompt is empty']);
  });

  it.each<EngineErrorCode>(['model_load_failed', 'model_incompatible'])('maps %s to 503 model_unavailable without internals', (code) => {
    const error = toApiError(new EngineError(code, 'cannot open /srv/models/secret/model.onnx'));
    expect([error.status, error.code, error.type]).toEqual([503, 'model_unavailable', 'server_error']);
    expect(error.message).not.toContain('/srv');
  });

  it('maps generation_failed to 500 without the onnxruntime message', () => {
    const error = toApiError(new EngineError('generation_failed', 'onnxruntime failed during a decoder step: bad alloc'));
    expect([error.status, error.type, error.code]).toEqual([500, 'server_error', 'generation_failed']);
    expect(error.message).not.toContain('onnxruntime');
  });

  it.each([
    [{ topP: 0 }, 'top_p'],
    [{ topK: 1.5 }, 'top_k'],
    [{ temperature: -1 }, 'temperature'],
    [{ seed: 0.5 }, 'seed'],
    [{ presencePenalty: Number.NaN }, 'presence_penalty'],
    [{ frequencyPenalty: Number.POSITIVE_INFINITY }, 'frequency_penalty'],
    [{ repetitionPenalty: 0 }, 'repetition_penalty'],
  ])('maps the sampler rejecting %o to 400 param %s', async (params, param) => {
    const error = toApiError(await thrown(() => validateSamplingParams(params)));
    expect([error.status, error.param]).toEqual([400, param]);
    expect(error.message.startsWith(param)).toBe(true);
  });

  it('maps too many stop sequences to 400 param stop', async () => {
    const error = toApiError(await thrown(() => new StopSequenceMatcher(['a', 'b', 'c', 'd', 'e'])));
    expect([error.status, error.param]).toEqual([400, 'stop']);
  });

  it('maps a chat template refusing the messages to 400 with its reason', async () => {
    const template = "{{ raise_exception('Conversation roles must alternate user/assistant') }}";
    const error = toApiError(await thrown(() => renderChat(template, [{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })));
    expect([error.status, error.param]).toEqual([400, 'messages']);
    expect(error.message).toContain('Conversation roles must alternate');
  });

  it('maps a broken chat template to 503', async () => {
    const error = toApiError(await thrown(() => renderChat('{% if %}', [], { addGenerationPrompt: true })));
    expect([error.status, error.code]).toEqual([503, 'model_unavailable']);
  });

  it('maps a missing tokenizer to 503 without naming the folder', async () => {
    const original = await thrown(() => loadTokenizer(emptyDir));
    expect((original as Error).message).toContain(emptyDir);
    const error = toApiError(original);
    expect([error.status, error.code]).toEqual([503, 'model_unavailable']);
    expect(error.message).not.toContain(emptyDir);
  });

  it('maps a broken model package to 503 without naming the folder', async () => {
    const original = await thrown(() => readManifest(emptyDir));
    expect((original as Error).name).toBe('ModelPackageError');
    const error = toApiError(original);
    expect([error.status, error.code]).toEqual([503, 'model_unavailable']);
    expect(error.message).not.toContain(emptyDir);
  });

  it('maps an abort to 499', async () => {
    const controller = new AbortController();
    controller.abort();
    const original = await thrown(() => fetch('http://127.0.0.1:9', { signal: controller.signal }));
    const error = toApiError(original);
    expect([error.status, error.code]).toEqual([499, 'client_closed_request']);
  });

  it('maps anything else to a generic 500 that hides the original', () => {
    const error = toApiError(new TypeError('Cannot read properties of undefined (reading secretThing)'));
    expect([error.status, error.type, error.code]).toEqual([500, 'server_error', null]);
    expect(error.message).not.toContain('secretThing');
    expect(toApiError('a string').status).toBe(500);
    expect(toApiError(undefined).status).toBe(500);
  });
});
