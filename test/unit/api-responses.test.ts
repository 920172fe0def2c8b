import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Completion } from 'openai/resources/completions';
import type { Model } from 'openai/resources/models';
import { describe, expect, it } from 'vitest';
import {
  ASSISTANT_ROLE_DELTA,
  chatCompletion,
  chatCompletionChunk,
  modelList,
  modelObject,
  newCompletionId,
  textCompletion,
  textCompletionChunk,
} from '../../src/api/responses.js';

// The annotations below make tsc check each builder against the official SDK's response types.
const meta = { id: 'chatcmpl-abc', created: 1_700_000_000, model: 'demo' };
const usage = { promptTokens: 7, completionTokens: 3 };

describe('chatCompletion', () => {
  it('builds a chat.completion with one assistant choice and usage', () => {
    const built: ChatCompletion = chatCompletion({ ...meta, content: 'Hello!', finishReason: 'stop', usage });
    expect(built).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'demo',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello!', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
  });

  it('carries a length finish', () => {
    expect(chatCompletion({ ...meta, content: '', finishReason: 'length', usage }).choices[0]!.finish_reason).toBe('length');
  });
});

describe('chatCompletionChunk', () => {
  it('builds the first chunk with the role and empty content, without usage when not asked', () => {
    const built: ChatCompletionChunk = chatCompletionChunk({ ...meta, delta: ASSISTANT_ROLE_DELTA });
    expect(built).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'demo',
      choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }],
    });
    expect('usage' in built).toBe(false);
  });

  it('builds a content chunk', () => {
    const built: ChatCompletionChunk = chatCompletionChunk({ ...meta, delta: { content: 'Hel' } });
    expect(built.choices).toStrictEqual([{ index: 0, delta: { content: 'Hel' }, logprobs: null, finish_reason: null }]);
  });

  it('builds the finish chunk with an empty delta', () => {
    const built: ChatCompletionChunk = chatCompletionChunk({ ...meta, finishReason: 'length' });
    expect(built.choices).toStrictEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }]);
  });

  it('puts usage: null on content chunks when include_usage is on', () => {
    const built: ChatCompletionChunk = chatCompletionChunk({ ...meta, delta: { content: 'x' }, usage: null });
    expect(built.usage).toBeNull();
    expect(built.choices).toHaveLength(1);
  });

  it('builds the usage chunk with no choices', () => {
    const built: ChatCompletionChunk = chatCompletionChunk({ ...meta, usage });
    expect(built).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'demo',
      choices: [],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
  });

  it('does not share the role delta object between chunks', () => {
    const built = chatCompletionChunk({ ...meta, delta: ASSISTANT_ROLE_DELTA });
    expect(built.choices[0]!.delta).not.toBe(ASSISTANT_ROLE_DELTA);
    expect(Object.isFrozen(ASSISTANT_ROLE_DELTA)).toBe(true);
  });
});

describe('textCompletion', () => {
  it('builds a text_completion with one choice and usage', () => {
    const built: Completion = textCompletion({ ...meta, id: 'cmpl-xyz', text: ' upon a time', finishReason: 'length', usage });
    expect(built).toStrictEqual({
      id: 'cmpl-xyz',
      object: 'text_completion',
      created: 1_700_000_000,
      model: 'demo',
      choices: [{ text: ' upon a time', index: 0, logprobs: null, finish_reason: 'length' }],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
  });

  it('builds streamed chunks: text, finish, and the usage chunk', () => {
    const text = textCompletionChunk({ ...meta, text: ' upon' });
    expect(text).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'text_completion',
      created: 1_700_000_000,
      model: 'demo',
      choices: [{ text: ' upon', index: 0, logprobs: null, finish_reason: null }],
    });
    const finish = textCompletionChunk({ ...meta, finishReason: 'stop', usage: null });
    expect(finish.choices).toStrictEqual([{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }]);
    expect(finish.usage).toBeNull();
    const last = textCompletionChunk({ ...meta, usage });
    expect(last.choices).toStrictEqual([]);
    expect(last.usage).toStrictEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
  });
});

describe('models', () => {
  it('builds a model object and a list', () => {
    const model: Model = modelObject('demo', 1_700_000_000, 'aigw');
    expect(model).toStrictEqual({ id: 'demo', object: 'model', created: 1_700_000_000, owned_by: 'aigw' });
    expect(modelList([model])).toStrictEqual({ object: 'list', data: [model] });
    expect(modelList([])).toStrictEqual({ object: 'list', data: [] });
  });
});

describe('newCompletionId', () => {
  it('makes prefixed ids of 29 alphanumeric random characters', () => {
    expect(newCompletionId('chatcmpl')).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(newCompletionId('cmpl')).toMatch(/^cmpl-[A-Za-z0-9]{29}$/);
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newCompletionId('cmpl')));
    expect(ids.size).toBe(1000);
  });

  it('uses the whole alphabet', () => {
    const seen = new Set(Array.from({ length: 200 }, () => newCompletionId('cmpl').slice(5)).join(''));
    expect(seen.size).toBe(62);
  });
});
