import { describe, expect, it } from 'vitest';
import { ConfigError, configuredModels, parseConfig } from '../../src/config/index.js';

function problems(toml: string): string {
  try {
    parseConfig(toml, {});
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

const upstream = `
[[models]]
name = "heavy"
base_url = "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1"
upstream_model = "openai.gpt-oss-120b-1:0"
api_key_env = "BEDROCK_API_KEY"
context_length = 128000
input_usd_per_million_tokens = "0.15"
output_usd_per_million_tokens = "0.60"
`;

describe('[[models]]', () => {
  it('takes local packages and upstreams, in file order', () => {
    const config = parseConfig(`[[models]]\nname = "qwen"\npath = "models/qwen-3"\n[[models]]\nname = "qwen"\nversion = "4"\npath = "models/qwen-4"\n${upstream}`, {});
    expect(configuredModels(config).map((m) => [m.name, m.version, m.path ?? m.base_url])).toEqual([
      ['qwen', undefined, 'models/qwen-3'],
      ['qwen', '4', 'models/qwen-4'],
      ['heavy', undefined, 'https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1'],
    ]);
    expect(configuredModels(config)[2]).toMatchObject({ input_usd_per_million_tokens: 150_000, output_usd_per_million_tokens: 600_000, context_length: 128_000 });
  });

  it('keeps a single [model] working as a list of one', () => {
    expect(configuredModels(parseConfig('[model]\nname = "mine"\npath = "m"\n', {}))).toEqual([
      { name: 'mine', path: 'm', format: 'auto', max_tokens: 256, max_concurrent_requests: 0 },
    ]);
  });

  it('says how to migrate when [model] and [[models]] are both there', () => {
    expect(problems(`[model]\nname = "a"\n${upstream}`)).toMatch(/move the \[model\] table into a \[\[models\]\] entry/);
  });

  it('never takes an API key from the file', () => {
    expect(problems(`${upstream}api_key = "sk-live"\n`)).toMatch(/models\[0\]\.api_key: an API key never goes in aigw\.toml/);
  });

  it('names what an entry lacks or mixes up', () => {
    expect(problems('[[models]]\nname = "x"\n')).toMatch(/give either path .* or base_url/);
    expect(problems('[[models]]\nname = "x"\npath = "p"\nbase_url = "http://h/v1"\n')).toMatch(/not both/);
    expect(problems('[[models]]\nname = "x"\nbase_url = "http://h/v1"\n')).toMatch(/models\[0\]\.context_length: an upstream needs context_length/);
    expect(problems('[[models]]\nname = "x"\npath = "p"\napi_key_env = "K"\n')).toMatch(/api_key_env is for an upstream/);
    expect(problems('[[models]]\nname = "x@1"\npath = "p"\n')).toMatch(/no "@"/);
    expect(problems('[[models]]\nname = "x"\nversion = "1"\npath = "p"\n[[models]]\nname = "x"\nversion = "1"\npath = "q"\n')).toMatch(/x@1 is listed twice/);
  });
});
