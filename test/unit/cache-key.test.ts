import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { GenerationInput } from '../../src/backends/model-backend.js';
import { CanonicalJsonError, cacheKey, cacheScope, canonicalJson, type CacheKeyInput } from '../../src/cache/index.js';

type Params = CacheKeyInput['params'];
type ParamName = keyof Params;

const role = fc.constantFrom('system', 'user', 'assistant');
const message = fc.record({ role, content: fc.string({ maxLength: 40 }) });
const input: fc.Arbitrary<GenerationInput> = fc.oneof(
  fc.record({ kind: fc.constant('chat' as const), messages: fc.array(message, { minLength: 1, maxLength: 5 }) }),
  fc.record({ kind: fc.constant('text' as const), prompt: fc.string({ maxLength: 60 }) }),
);
const finite = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

// Every parameter explicit, so a change to any one of them is a change of the resolved value.
const paramValue: { [K in ParamName]-?: fc.Arbitrary<NonNullable<Params[K]>> } = {
  maxTokens: fc.integer({ min: 1, max: 4096 }),
  temperature: finite(0, 2),
  topP: finite(0.01, 1),
  topK: fc.integer({ min: 0, max: 100 }),
  seed: fc.integer({ min: -1_000_000, max: 1_000_000 }),
  stop: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 4 }),
  presencePenalty: finite(-2, 2),
  frequencyPenalty: finite(-2, 2),
  repetitionPenalty: finite(0.1, 2),
};
const params: fc.Arbitrary<Params> = fc.record(paramValue);
const scope = fc.oneof(fc.constant('shared' as const), fc.stringMatching(/^key_[0-9A-Za-z]{12}$/).map((id) => `key:${id}` as const));
const request: fc.Arbitrary<CacheKeyInput> = fc.record({
  modelVersion: fc.stringMatching(/^[a-z0-9-]{1,12}@[0-9]{1,3}$/),
  scope,
  input,
  params,
});

/** A deep copy whose objects list their keys in a shuffled order. */
function reorderKeys(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => reorderKeys(v, random));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [entries[i], entries[j]] = [entries[j], entries[i]];
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, reorderKeys(v, random)]));
}

function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNegativeZero(v)]));
}

function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

describe('canonicalJson', () => {
  it('sorts keys, drops undefined fields, writes no whitespace and keeps array order', () => {
    const value = { b: [3, 1, { z: 1, a: undefined, m: 'x' }], a: { y: null, x: true }, c: undefined, d: 1.5e-7 };
    expect(canonicalJson(value)).toBe('{"a":{"x":true,"y":null},"b":[3,1,{"m":"x","z":1}],"d":1.5e-7}');
  });

  it('writes numbers in their shortest round-trip form', () => {
    expect(canonicalJson([0.1 + 0.2, 1e21, 100, -0, 2 ** 53])).toBe('[0.30000000000000004,1e+21,100,0,9007199254740992]');
  });

  it('refuses values JSON cannot carry instead of writing null', () => {
    for (const bad of [{ a: NaN }, { a: Infinity }, [undefined], { a: () => 1 }, { a: new Date(0) }, { a: 1n }]) {
      expect(() => canonicalJson(bad)).toThrow(CanonicalJsonError);
    }
  });

  it('round-trips through JSON.parse to a deep-equal value', () => {
    // -0 is written as 0 on purpose (as JSON.stringify does: both are the same parameter value),
    // so the round trip is checked on values without it; the test above pins that case.
    fc.assert(
      fc.property(fc.jsonValue().map(withoutNegativeZero), (value) => {
        expect(JSON.parse(canonicalJson(value))).toStrictEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same string whatever the key order of objects', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        expect(canonicalJson(reorderKeys(value, seededRandom(seed)))).toBe(canonicalJson(value));
      }),
      { numRuns: 500 },
    );
  });
});

describe('cacheKey', () => {
  const base: CacheKeyInput = {
    modelVersion: 'aigw-tiny@1',
    scope: 'key:key_AbCdEfGh1234',
    input: { kind: 'chat', messages: [{ role: 'user', content: 'Hello' }] },
    params: { maxTokens: 16, temperature: 0 },
  };

  it('is the SHA-256 of the documented version 1 composition', () => {
    // Written by hand from the comment in cache-key.ts; a change here needs a CACHE_KEY_VERSION bump.
    const document =
      '{"input":{"kind":"chat","messages":[{"content":"Hello","role":"user"}]},"model":"aigw-tiny@1",' +
      '"params":{"frequencyPenalty":0,"maxTokens":16,"presencePenalty":0,"repetitionPenalty":1,"stop":[],' +
      '"temperature":0,"topK":0,"topP":1},"scope":"key:key_AbCdEfGh1234","v":1}';
    expect(cacheKey(base)).toBe(createHash('sha256').update(document, 'utf8').digest('hex'));
    expect(cacheKey(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('treats an omitted parameter as its default value', () => {
    const explicit: CacheKeyInput = {
      ...base,
      params: { maxTokens: 16, temperature: 0, topP: 1, topK: 0, stop: ['', ''], presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1 },
    };
    expect(cacheKey(explicit)).toBe(cacheKey(base));
    expect(cacheKey({ ...base, params: { maxTokens: 16 } })).toBe(cacheKey({ ...base, params: { maxTokens: 16, temperature: 1 } }));
  });

  it('ignores message fields other than role and content', () => {
    const extra = { role: 'user', content: 'Hello', name: 'bob' };
    expect(cacheKey({ ...base, input: { kind: 'chat', messages: [extra] } })).toBe(cacheKey(base));
  });

  it('never changes with the key order of the request objects', () => {
    fc.assert(
      fc.property(request, fc.integer(), (req, seed) => {
        expect(cacheKey(reorderKeys(req, seededRandom(seed)) as CacheKeyInput)).toBe(cacheKey(req));
      }),
    );
  });

  it('changes when any single parameter changes', () => {
    const names = Object.keys(paramValue) as ParamName[];
    const change = fc.constantFrom(...names).chain((name) =>
      fc.tuple(fc.constant(name), paramValue[name] as fc.Arbitrary<unknown>),
    );
    fc.assert(
      fc.property(request, change, (req, [name, value]) => {
        fc.pre(canonicalJson(req.params[name]) !== canonicalJson(value));
        const changed = { ...req, params: { ...req.params, [name]: value } };
        expect(cacheKey(changed)).not.toBe(cacheKey(req));
      }),
      { numRuns: 500 },
    );
  });

  it('changes when the seed is set or unset', () => {
    fc.assert(
      fc.property(request, (req) => {
        const { seed: _seed, ...withoutSeed } = req.params;
        expect(cacheKey({ ...req, params: withoutSeed })).not.toBe(cacheKey(req));
      }),
    );
  });

  it('changes with the model version and with the scope', () => {
    fc.assert(
      fc.property(request, request, (a, b) => {
        fc.pre(a.modelVersion !== b.modelVersion);
        expect(cacheKey({ ...a, modelVersion: b.modelVersion })).not.toBe(cacheKey(a));
      }),
    );
    fc.assert(
      fc.property(request, scope, (req, other) => {
        fc.pre(req.scope !== other);
        expect(cacheKey({ ...req, scope: other })).not.toBe(cacheKey(req));
      }),
    );
  });

  const chatRequest = request.chain((req) =>
    fc.array(message, { minLength: 2, maxLength: 5 }).map((messages): CacheKeyInput => ({ ...req, input: { kind: 'chat', messages } })),
  );
  const messagesOf = (req: CacheKeyInput) => (req.input.kind === 'chat' ? req.input.messages : []);

  it("changes when one message's content or role changes", () => {
    fc.assert(
      fc.property(chatRequest, fc.nat(), message, (req, at, replacement) => {
        const messages = [...messagesOf(req)];
        const i = at % messages.length;
        fc.pre(messages[i].role !== replacement.role || messages[i].content !== replacement.content);
        const edits = [
          { role: replacement.role, content: messages[i].content },
          { role: messages[i].role, content: replacement.content },
        ].filter((m) => m.role !== messages[i].role || m.content !== messages[i].content);
        for (const edit of edits) {
          const changed = messages.map((m, j) => (j === i ? edit : m));
          expect(cacheKey({ ...req, input: { kind: 'chat', messages: changed } })).not.toBe(cacheKey(req));
        }
      }),
    );
  });

  it('changes when the message order changes', () => {
    fc.assert(
      fc.property(chatRequest, fc.nat(), fc.nat(), (req, a, b) => {
        const messages = [...messagesOf(req)];
        const [i, j] = [a % messages.length, b % messages.length];
        fc.pre(canonicalJson(messages[i]) !== canonicalJson(messages[j]));
        [messages[i], messages[j]] = [messages[j], messages[i]];
        expect(cacheKey({ ...req, input: { kind: 'chat', messages } })).not.toBe(cacheKey(req));
      }),
    );
  });

  it('tells a chat message from a text prompt with the same words', () => {
    const text: CacheKeyInput = { ...base, input: { kind: 'text', prompt: 'Hello' } };
    expect(cacheKey(text)).not.toBe(cacheKey(base));
  });
});

describe('cacheScope', () => {
  it('scopes by API key unless the cache is shared or there is no key', () => {
    expect(cacheScope({ shared: false }, 'key_AbCdEfGh1234')).toBe('key:key_AbCdEfGh1234');
    expect(cacheScope({ shared: true }, 'key_AbCdEfGh1234')).toBe('shared');
    expect(cacheScope({ shared: false }, undefined)).toBe('shared');
  });
});
