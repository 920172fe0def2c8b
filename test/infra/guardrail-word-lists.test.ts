// A guardrail word list of 10,000 terms (the seed's custom lexicon) deployed: it ships in the
// gateway function's code bundle, AIGW_CONFIG only names it, and an edited list is a new asset.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeployConfig } from '../../infra/deploy-config.js';
import { GATEWAY_CONFIG_ENV } from '../../src/adapters/gateway-function-config.js';
import { parseWordList } from '../../src/guardrails/guardrail-policy.js';
import { fixtureEntries, functionProperties, synthAigw, type SynthesizedApp } from './synth-app.js';
import { scratchDir } from '../helpers/scratch-dir.js';

const TERMS = Array.from({ length: 10_000 }, (_, i) => `sensitive-term-${String(i).padStart(5, '0')}`);

/** Lambda's limit on all of a function's environment variables together. */
const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;

/** Synthesizes the app from an aigw.toml whose `lexicon` rule reads the given list. */
function synthWithList(terms: readonly string[]): SynthesizedApp {
  // A folder with a space and a quote: the copy into the bundle goes through a shell.
  const dir = scratchDir("aigw lexicon's-");
  const file = join(dir, 'lexicon.txt');
  writeFileSync(file, `# the custom lexicon\n${terms.join('\n')}\n`);
  const toml = [
    '[deploy]',
    'regions = ["eu-west-1"]',
    'require_tls12 = false',
    '[guardrails]',
    'apply = ["lexicon", "inline"]',
    '[guardrails.rules.lexicon]',
    `words = ${JSON.stringify(file)}`,
    'action = "block"',
    '[guardrails.rules.inline]',
    'terms = ["inline-term"]',
    'action = "mask"',
  ].join('\n');
  const config = parseDeployConfig(toml);
  return synthAigw(
    { regions: config.regions },
    fixtureEntries,
    { gatewayToml: config.gatewayToml, gatewayWordLists: config.gatewayWordLists },
  );
}

function gatewayFunction(synth: SynthesizedApp) {
  const stack = synth.stacks.regional[0]!;
  return functionProperties(synth.template(stack), stack.gateway);
}

/** The gateway function's staged code folder in the cloud assembly, from its `<hash>.zip` key. */
function gatewayAsset(synth: SynthesizedApp): { hash: string; dir: string } {
  const hash = String(gatewayFunction(synth).Code.S3Key).replace(/\.zip$/, '');
  return { hash, dir: join(synth.outdir, `asset.${hash}`) };
}

let synth: SynthesizedApp;

beforeAll(() => {
  synth = synthWithList(TERMS);
});

describe('a 10,000-term guardrail word list, deployed', () => {
  it('leaves AIGW_CONFIG small: the rule names its bundled file instead of carrying the terms', () => {
    const variables = gatewayFunction(synth).Environment.Variables as Record<string, unknown>;
    const config = String(variables[GATEWAY_CONFIG_ENV]);
    expect(config).toContain('words = "guardrails/lexicon.txt"');
    expect(config).toContain('"inline-term"');
    expect(config).not.toContain('sensitive-term-');
    expect(Buffer.byteLength(config)).toBeLessThan(1024);
    // The literal values alone (unresolved references are short tokens) fit far below the limit.
    const literalBytes = Object.entries(variables)
      .filter(([, value]) => typeof value === 'string')
      .reduce((sum, [name, value]) => sum + name.length + Buffer.byteLength(value as string), 0);
    expect(literalBytes).toBeLessThan(LAMBDA_ENVIRONMENT_LIMIT_BYTES);
  });

  it('ships the list in the gateway function code bundle, at guardrails/<rule>.txt under the code root', () => {
    const { dir } = gatewayAsset(synth);
    expect(readFileSync(join(dir, 'index.mjs'), 'utf8')).toContain('statusCode');
    expect(parseWordList(readFileSync(join(dir, 'guardrails', 'lexicon.txt'), 'utf8'))).toEqual(TERMS);
  });

  it('changes the asset hash when one term changes, and only then', () => {
    const edited = [...TERMS];
    edited[4321] = 'sensitive-term-edited';
    const same = gatewayAsset(synthWithList(TERMS));
    const changed = gatewayAsset(synthWithList(edited));
    expect(same.hash).toBe(gatewayAsset(synth).hash);
    expect(changed.hash).not.toBe(same.hash);
    expect(readFileSync(join(changed.dir, 'guardrails', 'lexicon.txt'), 'utf8')).toContain('sensitive-term-edited');
  });
});
