import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { upstreamModelBackend } from '../../src/routing/upstream-models.js';

const upstream = (more: string) => `
[[models]]
name = "heavy"
base_url = "http://127.0.0.1:9/v1"
context_length = 8192
input_usd_per_million_tokens = "1"
output_usd_per_million_tokens = "2"
${more}
`;

describe('continue_final_message in [[models]]', () => {
  it('marks an upstream as able to continue a partial reply; absent, it cannot', () => {
    const marked = parseConfig(upstream('continue_final_message = true'), {}).models![0]!;
    expect(upstreamModelBackend(marked, undefined).continuesChat).toBe(true);
    const unmarked = parseConfig(upstream(''), {}).models![0]!;
    expect(upstreamModelBackend(unmarked, undefined).continuesChat).toBe(false);
  });

  it('is refused on a local package, which continues by itself', () => {
    expect(() => parseConfig('[[models]]\nname = "small"\npath = "models/small"\ncontinue_final_message = true\n', {})).toThrow(/continue_final_message is for an upstream/);
  });
});
