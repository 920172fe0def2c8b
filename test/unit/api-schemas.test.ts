import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/api/errors.js';
import { MAX_STOP_SEQUENCES, parseChatCompletionRequest, parseCompletionRequest, parseGenerateRequest } from '../../src/api/schemas.js';
import { MAX_STOP_SEQUENCES as ENGINE_MAX_STOP_SEQUENCES } from '../../src/engine/generate.js';

const user = [{ role: 'user', content: 'hi' }];
const chat = (extra: Record<string, unknown>) => ({ model: 'demo', messages: user, ...extra });
const completion = (extra: Record<string, unknown>) => ({ model: 'demo', prompt: 'Once', ...extra });

interface Rejection {
  param: string | null;
  code: string | null;
  message: string | RegExp;
}

/** The ApiError a parse throws; fails the test when the parse succeeds. */
function rejectionOf(parse: (body: unknown) => unknown, body: unknown): ApiError {
  try {
    parse(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be rejected`);
}

function expectRejection(parse: (body: unknown) => unknown, body: unknown, want: Rejection): void {
  const error = rejectionOf(parse, body);
  expect(error.status).toBe(400);
  expect(error.type).toBe('invalid_request_error');
  expect(error.param).toBe(want.param);
  expect(error.code).toBe(want.code);
  if (typeof want.message === 'string') expect(error.message).toBe(want.message);
  else expect(error.message).toMatch(want.message);
}

describe('parseChatCompletionRequest: valid bodies', () => {
  it('normalizes a minimal request with defaults', () => {
    expect(parseChatCompletionRequest(chat({}))).toEqual({
      model: 'demo',
      messages: [{ role: 'user', content: 'hi' }],
      stop: [],
      stream: false,
      includeUsage: false,
    });
  });

  it('maps every sampling field to its engine name', () => {
    const parsed = parseChatCompletionRequest(
      chat({
        max_tokens: 12,
        temperature: 0.7,
        top_p: 0.9,
        top_k: 40,
        seed: 42,
        presence_penalty: -2,
        frequency_penalty: 2,
        repetition_penalty: 1.1,
        stop: ['\n\n', 'END'],
        n: 1,
        user: 'team-a',
      }),
    );
    expect(parsed).toEqual({
      model: 'demo',
      messages: [{ role: 'user', content: 'hi' }],
      maxTokens: 12,
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      seed: 42,
      presencePenalty: -2,
      frequencyPenalty: 2,
      repetitionPenalty: 1.1,
      stop: ['\n\n', 'END'],
      stream: false,
      includeUsage: false,
      user: 'team-a',
    });
  });

  it('accepts the range bounds', () => {
    const low = parseChatCompletionRequest(chat({ temperature: 0, top_p: 0, top_k: 0, max_tokens: 1 }));
    expect([low.temperature, low.topP, low.topK, low.maxTokens]).toEqual([0, 0, 0, 1]);
    const high = parseChatCompletionRequest(chat({ temperature: 2, top_p: 1 }));
    expect([high.temperature, high.topP]).toEqual([2, 1]);
  });

  it('turns a single stop string into a list', () => {
    expect(parseChatCompletionRequest(chat({ stop: '###' })).stop).toEqual(['###']);
    expect(parseChatCompletionRequest(chat({ stop: ['a', 'b', 'c', 'd'] })).stop).toEqual(['a', 'b', 'c', 'd']);
  });

  it('allows as many stop strings as the engine does', () => {
    expect(MAX_STOP_SEQUENCES).toBe(ENGINE_MAX_STOP_SEQUENCES);
  });

  it('lets max_completion_tokens win over max_tokens', () => {
    expect(parseChatCompletionRequest(chat({ max_tokens: 5, max_completion_tokens: 9 })).maxTokens).toBe(9);
    expect(parseChatCompletionRequest(chat({ max_completion_tokens: 9 })).maxTokens).toBe(9);
    expect(parseChatCompletionRequest(chat({ max_tokens: 5 })).maxTokens).toBe(5);
  });

  it('treats null like an absent field, as OpenAI does', () => {
    const parsed = parseChatCompletionRequest(
      chat({ temperature: null, top_p: null, max_tokens: null, stop: null, n: null, seed: null, user: null, stream: null, stream_options: null, logprobs: null, tools: null }),
    );
    expect(parsed).toEqual({ model: 'demo', messages: user, stop: [], stream: false, includeUsage: false });
  });

  it('ignores unknown fields, top-level and in messages', () => {
    const parsed = parseChatCompletionRequest({
      model: 'demo',
      messages: [{ role: 'user', content: 'hi', name: 'ann', extra: true }],
      metadata: { a: 1 },
      store: false,
      service_tier: 'auto',
    });
    expect(parsed).toEqual({ model: 'demo', messages: [{ role: 'user', content: 'hi' }], stop: [], stream: false, includeUsage: false });
  });

  it('reads include_usage only when streaming', () => {
    expect(parseChatCompletionRequest(chat({ stream: true }))).toMatchObject({ stream: true, includeUsage: false });
    expect(parseChatCompletionRequest(chat({ stream: true, stream_options: { include_usage: true } }))).toMatchObject({
      stream: true,
      includeUsage: true,
    });
    expect(parseChatCompletionRequest(chat({ stream: true, stream_options: { include_usage: false } })).includeUsage).toBe(false);
  });

  it('maps developer to system and joins text parts with newlines', () => {
    const parsed = parseChatCompletionRequest(
      chat({
        messages: [
          { role: 'developer', content: 'Be brief.' },
          { role: 'system', content: [{ type: 'text', text: 'Be kind.' }] },
          { role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'there' }] },
          { role: 'assistant', content: 'Hi!' },
          { role: 'user', content: 'Bye' },
        ],
      }),
    );
    expect(parsed.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hello\nthere' },
      { role: 'assistant', content: 'Hi!' },
      { role: 'user', content: 'Bye' },
    ]);
  });

  it('accepts an assistant turn without content, and refusal parts as text', () => {
    const parsed = parseChatCompletionRequest(
      chat({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: null },
          { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] },
          { role: 'user', content: 'b' },
        ],
      }),
    );
    expect(parsed.messages.map((m) => m.content)).toEqual(['a', '', 'No.', 'b']);
  });

  it('accepts the defaults of unsupported features', () => {
    const parsed = parseChatCompletionRequest(chat({ logprobs: false, tools: [], functions: [], response_format: { type: 'text' } }));
    expect(parsed.model).toBe('demo');
  });
});

describe('parseChatCompletionRequest: rejections', () => {
  it.each<[string, unknown, Rejection]>([
    ['a missing model', { messages: user }, { param: 'model', code: 'missing_required_parameter', message: "Missing required parameter: 'model'." }],
    ['an empty model', chat({ model: '' }), { param: 'model', code: 'empty_string', message: /^Invalid 'model': empty string/ }],
    ['a numeric model', chat({ model: 7 }), { param: 'model', code: 'invalid_type', message: "Invalid type for 'model': expected a string, but got an integer instead." }],
    ['missing messages', { model: 'demo' }, { param: 'messages', code: 'missing_required_parameter', message: "Missing required parameter: 'messages'." }],
    [
      'empty messages',
      chat({ messages: [] }),
      { param: 'messages', code: 'empty_array', message: "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead." },
    ],
    ['messages as a string', chat({ messages: 'hi' }), { param: 'messages', code: 'invalid_type', message: "Invalid type for 'messages': expected an array, but got a string instead." }],
    ['a message that is not an object', chat({ messages: ['hi'] }), { param: 'messages[0]', code: 'invalid_type', message: /expected an object, but got a string/ }],
    ['a missing role', chat({ messages: [{ content: 'x' }] }), { param: 'messages[0].role', code: 'missing_required_parameter', message: "Missing required parameter: 'messages[0].role'." }],
    [
      'an unknown role',
      chat({ messages: [{ role: 'narrator', content: 'x' }] }),
      { param: 'messages[0].role', code: 'invalid_value', message: "Invalid value: 'narrator'. Supported values are: 'system', 'developer', 'user', and 'assistant'." },
    ],
    ['a tool message', chat({ messages: [...user, { role: 'tool', content: 'x', tool_call_id: 'c' }] }), { param: 'messages[1].role', code: 'unsupported_value', message: /'tool' messages are not supported.*no tool or function calling/ }],
    ['a function message', chat({ messages: [{ role: 'function', content: 'x', name: 'f' }] }), { param: 'messages[0].role', code: 'unsupported_value', message: /'function' messages are not supported/ }],
    ['a user message without content', chat({ messages: [{ role: 'user' }] }), { param: 'messages[0].content', code: 'missing_required_parameter', message: "Missing required parameter: 'messages[0].content'." }],
    ['a user message with null content', chat({ messages: [{ role: 'user', content: null }] }), { param: 'messages[0].content', code: 'invalid_type', message: /but got null instead/ }],
    ['numeric content', chat({ messages: [{ role: 'user', content: 3 }] }), { param: 'messages[0].content', code: 'invalid_type', message: "Invalid type for 'messages[0].content': expected one of a string or an array, but got an integer instead." }],
    ['an empty parts array', chat({ messages: [{ role: 'user', content: [] }] }), { param: 'messages[0].content', code: 'empty_array', message: /empty array/ }],
    [
      'an image part',
      chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }),
      { param: 'messages[0].content[1].type', code: 'unsupported_value', message: /'image_url' content is not supported by this model/ },
    ],
    ['an audio part', chat({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] }), { param: 'messages[0].content[0].type', code: 'unsupported_value', message: /'input_audio' content is not supported by this model/ }],
    ['an unknown part type', chat({ messages: [{ role: 'user', content: [{ type: 'video' }] }] }), { param: 'messages[0].content[0].type', code: 'invalid_value', message: "Invalid value: 'video'. Supported values are: 'text' and 'refusal'." }],
    ['a part without text', chat({ messages: [{ role: 'user', content: [{ type: 'text' }] }] }), { param: 'messages[0].content[0].text', code: 'missing_required_parameter', message: "Missing required parameter: 'messages[0].content[0].text'." }],
    ['a part with numeric text', chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 4 }] }] }), { param: 'messages[0].content[0].text', code: 'invalid_type', message: "Invalid type for 'messages[0].content[0].text': expected a string, but got an integer instead." }],
    ['assistant tool calls', chat({ messages: [...user, { role: 'assistant', content: null, tool_calls: [{ id: 'c' }] }] }), { param: 'messages[1].tool_calls', code: 'unsupported_parameter', message: /tool calls are not supported/ }],
    ['a string temperature', chat({ temperature: '0.5' }), { param: 'temperature', code: 'invalid_type', message: "Invalid type for 'temperature': expected a number, but got a string instead." }],
    ['a negative temperature', chat({ temperature: -1 }), { param: 'temperature', code: 'decimal_below_min_value', message: "-1 is less than the minimum of 0 - 'temperature'" }],
    ['a temperature over 2', chat({ temperature: 2.5 }), { param: 'temperature', code: 'decimal_above_max_value', message: "2.5 is greater than the maximum of 2 - 'temperature'" }],
    ['top_p over 1', chat({ top_p: 1.5 }), { param: 'top_p', code: 'decimal_above_max_value', message: "1.5 is greater than the maximum of 1 - 'top_p'" }],
    ['a negative top_p', chat({ top_p: -0.1 }), { param: 'top_p', code: 'decimal_below_min_value', message: "-0.1 is less than the minimum of 0 - 'top_p'" }],
    ['a zero max_tokens', chat({ max_tokens: 0 }), { param: 'max_tokens', code: 'integer_below_min_value', message: "0 is less than the minimum of 1 - 'max_tokens'" }],
    ['a fractional max_tokens', chat({ max_tokens: 1.5 }), { param: 'max_tokens', code: 'invalid_type', message: "Invalid type for 'max_tokens': expected an integer, but got a decimal instead." }],
    ['a negative max_completion_tokens', chat({ max_completion_tokens: -3 }), { param: 'max_completion_tokens', code: 'integer_below_min_value', message: "-3 is less than the minimum of 1 - 'max_completion_tokens'" }],
    ['a fractional seed', chat({ seed: 1.25 }), { param: 'seed', code: 'invalid_type', message: /expected an integer, but got a decimal/ }],
    ['a seed past 2^53', chat({ seed: 2 ** 60 }), { param: 'seed', code: 'integer_above_max_value', message: /is greater than the maximum of 9007199254740991 - 'seed'/ }],
    ['a presence_penalty under -2', chat({ presence_penalty: -2.5 }), { param: 'presence_penalty', code: 'decimal_below_min_value', message: "-2.5 is less than the minimum of -2 - 'presence_penalty'" }],
    ['a frequency_penalty over 2', chat({ frequency_penalty: 3 }), { param: 'frequency_penalty', code: 'decimal_above_max_value', message: "3 is greater than the maximum of 2 - 'frequency_penalty'" }],
    ['a negative top_k', chat({ top_k: -1 }), { param: 'top_k', code: 'integer_below_min_value', message: "-1 is less than the minimum of 0 - 'top_k'" }],
    ['a fractional top_k', chat({ top_k: 2.5 }), { param: 'top_k', code: 'invalid_type', message: /expected an integer/ }],
    ['a zero repetition_penalty', chat({ repetition_penalty: 0 }), { param: 'repetition_penalty', code: 'decimal_below_min_value', message: "0 is less than or equal to the exclusive minimum of 0 - 'repetition_penalty'" }],
    [
      'five stop strings',
      chat({ stop: ['a', 'b', 'c', 'd', 'e'] }),
      { param: 'stop', code: 'array_above_max_length', message: "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead." },
    ],
    ['a numeric stop', chat({ stop: 5 }), { param: 'stop', code: 'invalid_type', message: "Invalid type for 'stop': expected one of a string or an array, but got an integer instead." }],
    ['a numeric stop entry', chat({ stop: ['a', 1] }), { param: 'stop[1]', code: 'invalid_type', message: "Invalid type for 'stop[1]': expected a string, but got an integer instead." }],
    ['n = 2', chat({ n: 2 }), { param: 'n', code: 'unsupported_value', message: "Invalid 'n': only n=1 is supported by this gateway." }],
    ['n = 0', chat({ n: 0 }), { param: 'n', code: 'unsupported_value', message: /only n=1 is supported/ }],
    ['a string n', chat({ n: 'one' }), { param: 'n', code: 'invalid_type', message: "Invalid type for 'n': expected a number, but got a string instead." }],
    ['a numeric user', chat({ user: 5 }), { param: 'user', code: 'invalid_type', message: /expected a string/ }],
    ['a string stream', chat({ stream: 'yes' }), { param: 'stream', code: 'invalid_type', message: "Invalid type for 'stream': expected a boolean, but got a string instead." }],
    [
      'stream_options without stream',
      chat({ stream_options: { include_usage: true } }),
      { param: 'stream_options', code: null, message: "The 'stream_options' parameter is only allowed when 'stream' is enabled." },
    ],
    ['stream_options with stream false', chat({ stream: false, stream_options: { include_usage: true } }), { param: 'stream_options', code: null, message: /only allowed when 'stream' is enabled/ }],
    ['a string include_usage', chat({ stream: true, stream_options: { include_usage: 'yes' } }), { param: 'stream_options.include_usage', code: 'invalid_type', message: /expected a boolean/ }],
    ['logprobs', chat({ logprobs: true }), { param: 'logprobs', code: 'unsupported_value', message: /logprobs are not supported/ }],
    ['top_logprobs', chat({ top_logprobs: 3 }), { param: 'top_logprobs', code: 'unsupported_parameter', message: /logprobs are not supported/ }],
    ['tools', chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), { param: 'tools', code: 'unsupported_parameter', message: /tools are not supported.*no tool calling/ }],
    ['functions', chat({ functions: [{ name: 'f' }] }), { param: 'functions', code: 'unsupported_parameter', message: /functions are not supported/ }],
    ['JSON mode', chat({ response_format: { type: 'json_object' } }), { param: 'response_format', code: 'unsupported_value', message: /only the 'text' response format is supported/ }],
  ])('rejects %s', (_name, body, want) => {
    expectRejection(parseChatCompletionRequest, body, want);
  });

  it.each([
    [null, 'null'],
    [[], 'an array'],
    ['text', 'a string'],
    [5, 'an integer'],
  ])('rejects a body that is %j', (body, got) => {
    expectRejection(parseChatCompletionRequest, body, {
      param: null,
      code: 'invalid_type',
      message: `Invalid request body: expected a JSON object, but got ${got} instead.`,
    });
  });

  it('reports the first problem in field order', () => {
    const error = rejectionOf(parseChatCompletionRequest, { model: 'demo', messages: [], temperature: 'hot' });
    expect(error.param).toBe('messages');
  });
});

describe('parseCompletionRequest', () => {
  it('normalizes a prompt string, defaulting max_tokens to 16 as OpenAI does', () => {
    expect(parseCompletionRequest(completion({}))).toEqual({
      model: 'demo',
      prompt: 'Once',
      maxTokens: 16,
      stop: [],
      stream: false,
      includeUsage: false,
    });
  });

  it('takes the sampling fields and streaming options', () => {
    const parsed = parseCompletionRequest(
      completion({ max_tokens: 30, temperature: 0, top_p: 0.5, seed: 3, stop: 'x', stream: true, stream_options: { include_usage: true }, user: 'u', top_k: 5, repetition_penalty: 1.2, presence_penalty: 1, frequency_penalty: -1 }),
    );
    expect(parsed).toEqual({
      model: 'demo',
      prompt: 'Once',
      maxTokens: 30,
      temperature: 0,
      topP: 0.5,
      topK: 5,
      seed: 3,
      presencePenalty: 1,
      frequencyPenalty: -1,
      repetitionPenalty: 1.2,
      stop: ['x'],
      stream: true,
      includeUsage: true,
      user: 'u',
    });
  });

  it('accepts an array of exactly one string', () => {
    expect(parseCompletionRequest(completion({ prompt: ['Once upon'] })).prompt).toBe('Once upon');
  });

  it('accepts the defaults of unsupported options', () => {
    const parsed = parseCompletionRequest(completion({ echo: false, best_of: 1, suffix: null, logprobs: null, n: 1 }));
    expect(parsed.prompt).toBe('Once');
  });

  it.each<[string, unknown, Rejection]>([
    ['a missing prompt', { model: 'demo' }, { param: 'prompt', code: 'missing_required_parameter', message: "Missing required parameter: 'prompt'." }],
    ['a missing model', { prompt: 'x' }, { param: 'model', code: 'missing_required_parameter', message: "Missing required parameter: 'model'." }],
    ['a token array', completion({ prompt: [1, 2, 3] }), { param: 'prompt', code: 'unsupported_value', message: /token arrays are not supported/ }],
    ['a batch of token arrays', completion({ prompt: [[1, 2], [3]] }), { param: 'prompt', code: 'unsupported_value', message: /token arrays are not supported/ }],
    ['several prompts', completion({ prompt: ['a', 'b'] }), { param: 'prompt', code: 'unsupported_value', message: /only one prompt per request/ }],
    ['an empty prompt array', completion({ prompt: [] }), { param: 'prompt', code: 'empty_array', message: /empty array/ }],
    ['an object prompt', completion({ prompt: { text: 'x' } }), { param: 'prompt', code: 'invalid_type', message: /expected one of a string or an array of one string, but got an object instead/ }],
    ['echo', completion({ echo: true }), { param: 'echo', code: 'unsupported_value', message: /echo is not supported/ }],
    ['best_of 2', completion({ best_of: 2 }), { param: 'best_of', code: 'unsupported_value', message: /only best_of=1/ }],
    ['a suffix', completion({ suffix: ' end' }), { param: 'suffix', code: 'unsupported_parameter', message: /suffix is not supported/ }],
    ['logprobs', completion({ logprobs: 2 }), { param: 'logprobs', code: 'unsupported_parameter', message: /logprobs are not supported/ }],
    ['a temperature over 2', completion({ temperature: 5 }), { param: 'temperature', code: 'decimal_above_max_value', message: "5 is greater than the maximum of 2 - 'temperature'" }],
    ['n = 3', completion({ n: 3 }), { param: 'n', code: 'unsupported_value', message: /only n=1/ }],
    ['stream_options without stream', completion({ stream_options: { include_usage: true } }), { param: 'stream_options', code: null, message: /only allowed when 'stream' is enabled/ }],
    ['five stop strings', completion({ stop: ['a', 'b', 'c', 'd', 'e'] }), { param: 'stop', code: 'array_above_max_length', message: /array too long/ }],
  ])('rejects %s', (_name, body, want) => {
    expectRejection(parseCompletionRequest, body, want);
  });
});

describe('parseGenerateRequest', () => {
  it('maps system, user and parameters onto chat messages and engine fields', () => {
    expect(
      parseGenerateRequest({
        system: 'Answer in French.',
        user: 'Hello',
        parameters: { temperature: 0.2, top_p: 0.8, max_tokens: 50 },
        stream: true,
        model: 'demo',
        extra: 1,
      }),
    ).toEqual({
      model: 'demo',
      messages: [
        { role: 'system', content: 'Answer in French.' },
        { role: 'user', content: 'Hello' },
      ],
      maxTokens: 50,
      temperature: 0.2,
      topP: 0.8,
      stop: [],
      stream: true,
      includeUsage: false,
    });
  });

  it('needs only user', () => {
    expect(parseGenerateRequest({ user: 'Hi' })).toEqual({
      messages: [{ role: 'user', content: 'Hi' }],
      stop: [],
      stream: false,
      includeUsage: false,
    });
  });

  it.each<[string, unknown, Rejection]>([
    ['a missing user', { system: 's' }, { param: 'user', code: 'missing_required_parameter', message: "Missing required parameter: 'user'." }],
    ['a numeric system', { system: 1, user: 'u' }, { param: 'system', code: 'invalid_type', message: /expected a string/ }],
    ['a string temperature', { user: 'u', parameters: { temperature: 'x' } }, { param: 'parameters.temperature', code: 'invalid_type', message: "Invalid type for 'parameters.temperature': expected a number, but got a string instead." }],
    ['top_p over 1', { user: 'u', parameters: { top_p: 2 } }, { param: 'parameters.top_p', code: 'decimal_above_max_value', message: "2 is greater than the maximum of 1 - 'parameters.top_p'" }],
    ['a zero max_tokens', { user: 'u', parameters: { max_tokens: 0 } }, { param: 'parameters.max_tokens', code: 'integer_below_min_value', message: "0 is less than the minimum of 1 - 'parameters.max_tokens'" }],
    ['parameters as a list', { user: 'u', parameters: [] }, { param: 'parameters', code: 'invalid_type', message: /expected an object, but got an array/ }],
    ['an empty model', { user: 'u', model: '' }, { param: 'model', code: 'empty_string', message: /empty string/ }],
  ])('rejects %s', (_name, body, want) => {
    expectRejection(parseGenerateRequest, body, want);
  });
});

describe('logit_bias', () => {
  it('is refused when it would change the output, accepted when empty', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    expect(() => parseChatCompletionRequest({ ...base, logit_bias: { '42': -100 } })).toThrow(/logit_bias/);
    expect(() => parseCompletionRequest({ model: 'm', prompt: 'hi', logit_bias: { '42': 5 } })).toThrow(/logit_bias/);
    expect(parseChatCompletionRequest({ ...base, logit_bias: {} }).model).toBe('m');
    expect(parseChatCompletionRequest({ ...base, logit_bias: null }).model).toBe('m');
  });
});

describe('continue_final_message (vLLM), as a fallback chain sends it to aigw targets', () => {
  const partial = { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'Hello, th' }] };

  it('accepts it with the partial assistant reply last', () => {
    expect(parseChatCompletionRequest(chat({ ...partial, continue_final_message: true, add_generation_prompt: false }))).toMatchObject({
      continueFinalMessage: true,
      messages: partial.messages,
    });
    expect(parseChatCompletionRequest(chat({ ...partial, continue_final_message: false })).continueFinalMessage).toBeUndefined();
  });

  it('refuses it when the last message is not the assistant\'s, or with add_generation_prompt true', () => {
    expect(() => parseChatCompletionRequest(chat({ continue_final_message: true }))).toThrow(/continue_final_message/);
    expect(() => parseChatCompletionRequest(chat({ ...partial, continue_final_message: true, add_generation_prompt: true }))).toThrow(/continue_final_message/);
    expect(() => parseChatCompletionRequest(chat({ add_generation_prompt: false }))).toThrow(/add_generation_prompt/);
  });
});
