import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { chooseRoute, lastUserMessage, routingOptionsOf, wordPattern, type RouteFacts, type RouteTable } from '../../src/routing/index.js';

const facts = (more: Partial<RouteFacts> = {}): RouteFacts => ({ promptTokens: 10, maxTokens: undefined, lastUserMessage: 'hello', routeHeader: undefined, ...more });

const toml = `
[routing.routes.assistant]
default = "small"
[[routing.routes.assistant.rules]]
name = "long"
target = "large"
prompt_tokens_over = 100
[[routing.routes.assistant.rules]]
target = "large"
max_tokens_over = 500
[[routing.routes.assistant.rules]]
name = "math"
target = "math"
matches = "\\\\b(integral|derivative)s?\\\\b"
[[routing.routes.assistant.rules]]
name = "legal"
target = "large"
words = ["contract", "liability"]
[[routing.routes.assistant.rules]]
name = "asked"
target = "large"
header = "heavy"
`;

const table = (): RouteTable => routingOptionsOf(parseConfig(toml, {}).routing).routes.get('assistant')!;

describe('route rules', () => {
  it('falls to the default when no rule matches', () => {
    expect(chooseRoute(table(), facts())).toEqual({ target: 'small', rule: 'default', reason: 'default' });
  });

  it('matches each kind of rule', () => {
    expect(chooseRoute(table(), facts({ promptTokens: 101 }))).toEqual({ target: 'large', rule: 'long', reason: 'prompt_tokens' });
    expect(chooseRoute(table(), facts({ promptTokens: 100 })).rule).toBe('default');
    expect(chooseRoute(table(), facts({ maxTokens: 501 }))).toEqual({ target: 'large', rule: 'rule 2', reason: 'max_tokens' });
    expect(chooseRoute(table(), facts({ maxTokens: 500 })).rule).toBe('default');
    expect(chooseRoute(table(), facts({ lastUserMessage: 'Solve these INTEGRALS' }))).toMatchObject({ target: 'math', reason: 'matches' });
    expect(chooseRoute(table(), facts({ lastUserMessage: 'Read my Contract, please.' }))).toMatchObject({ target: 'large', reason: 'words' });
    expect(chooseRoute(table(), facts({ routeHeader: ' Heavy ' }))).toMatchObject({ target: 'large', rule: 'asked', reason: 'header' });
    expect(chooseRoute(table(), facts({ routeHeader: 'light' })).rule).toBe('default');
  });

  it('evaluates rules in the order written: the first match wins', () => {
    expect(chooseRoute(table(), facts({ promptTokens: 1000, lastUserMessage: 'integral', routeHeader: 'heavy' })).rule).toBe('long');
    expect(chooseRoute(table(), facts({ lastUserMessage: 'a contract about an integral' })).rule).toBe('math');
  });

  it('matches words whole, ignoring case, in any script', () => {
    const pattern = wordPattern(['prove', 'Straße', 'c++']);
    expect(pattern.test('Please PROVE it')).toBe(true);
    expect(pattern.test('improve it')).toBe(false);
    expect(pattern.test('proven')).toBe(false);
    expect(pattern.test('die straße.')).toBe(true);
    expect(pattern.test('I write c++ daily')).toBe(true);
  });

  it('reads the last user message of a chat, or the whole prompt', () => {
    const chat = { kind: 'chat' as const, messages: [{ role: 'user', content: 'first' }, { role: 'assistant', content: 'x' }, { role: 'user', content: 'last' }, { role: 'assistant', content: 'y' }] };
    expect(lastUserMessage(chat)).toBe('last');
    expect(lastUserMessage({ kind: 'text', prompt: 'p' })).toBe('p');
  });

  it('refuses a rule with no condition or two, and a regex that does not compile, naming the key', () => {
    const bad = (rule: string) => () => parseConfig(`[routing.routes.r]\ndefault = "m"\n[[routing.routes.r.rules]]\ntarget = "m"\n${rule}\n`, {});
    expect(bad('')).toThrow(/exactly one of prompt_tokens_over/);
    expect(bad('prompt_tokens_over = 5\nmax_tokens_over = 5')).toThrow(/exactly one of/);
    expect(bad('matches = "(unclosed"')).toThrow(/routing\.routes\.r\.rules\[0\]\.matches.*regular expression/);
  });
});
