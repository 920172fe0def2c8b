// functions/gateway.ts with a guardrail word list as the stack deploys it: AIGW_CONFIG names
// `guardrails/<rule>.txt`, the file sits under the function's code root (LAMBDA_TASK_ROOT, here a
// temporary folder that is not the working directory), and a missing file fails the cold start.
import '../helpers/awslambda-shim.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { functionUrlEvent, invokeStreaming } from '../helpers/awslambda-shim.js';
import { FIXTURE_MODEL_ID, startGatewayFunction, type GatewayFunctionFixture } from '../helpers/gateway-function-fixture.js';
import type { VerifiedGateway } from '../helpers/sigv4-verifier.js';
import { createTestStore } from '../setup/store.js';
import { ORIGIN_SECRET_HEADER } from '../../infra/origin-protection.js';
import type { LambdaFunctionURLEvent, StreamingLambdaHandler } from '../../src/adapters/lambda-streaming.js';
import { createApiKey } from '../../src/admission/index.js';
import { scratchDir } from '../helpers/scratch-dir.js';

const SECRET = 'origin-secret-0123456789abcdef0123';
const TERMS = Array.from({ length: 10_000 }, (_, i) => `sensitive-term-${String(i).padStart(5, '0')}`);

let fixture: GatewayFunctionFixture;
let handler: StreamingLambdaHandler;
let verifier: VerifiedGateway;
let apiKey: string;

beforeAll(async () => {
  const taskRoot = scratchDir('aigw-task-root-');
  mkdirSync(join(taskRoot, 'guardrails'));
  writeFileSync(join(taskRoot, 'guardrails', 'lexicon.txt'), `# the custom lexicon\n${TERMS.join('\n')}\n`);
  const store = await createTestStore('lambda-word-lists');
  apiKey = (await createApiKey(store, { name: 'word-lists' })).key;
  fixture = await startGatewayFunction({
    tableName: store.tableName,
    originSecret: { AWSCURRENT: SECRET },
    // As infra/deploy-config.ts writes it: the rule names the bundled copy, not the terms.
    config: [
      '[monitoring]',
      'log_level = "error"',
      'metrics = "off"',
      '[guardrails]',
      'apply = ["lexicon"]',
      '[guardrails.rules.lexicon]',
      'words = "guardrails/lexicon.txt"',
      'action = "block"',
    ],
    env: { LAMBDA_TASK_ROOT: taskRoot },
  });
  ({ handler, verifier } = fixture);
});

afterAll(async () => {
  await fixture?.close();
});

/** The chat-completion fixture with another prompt. */
function chatEvent(prompt: string): LambdaFunctionURLEvent {
  const loaded = functionUrlEvent('chat-completion', { API_KEY: apiKey });
  const body = Buffer.from(JSON.stringify({ model: FIXTURE_MODEL_ID, messages: [{ role: 'user', content: prompt }], max_tokens: 4, temperature: 0 }));
  loaded.body = body.toString('base64');
  loaded.headers['content-length'] = String(body.length);
  loaded.headers[ORIGIN_SECRET_HEADER] = SECRET;
  return loaded;
}

describe('the gateway function with a bundled word list', () => {
  it('refuses a prompt containing a listed term with 400 content_filter, without calling the model', async () => {
    const accepted = verifier.accepted();
    const result = await invokeStreaming(handler, chatEvent('Tell me everything about sensitive-term-04321, please.'));
    expect(result.prelude?.statusCode).toBe(400);
    const body = JSON.parse(result.body.toString('utf8'));
    expect(body.error.code).toBe('content_filter');
    expect(verifier.accepted()).toBe(accepted);
  });

  it('serves a prompt with no listed term', async () => {
    const result = await invokeStreaming(handler, chatEvent('Say hello.'));
    expect(result.error).toBeUndefined();
    expect(result.prelude?.statusCode).toBe(200);
  });

  it('fails the cold start, naming the rule and the path, when the list is missing from the code root', async () => {
    const emptyRoot = scratchDir('aigw-task-root-empty-');
    const previous = process.env.LAMBDA_TASK_ROOT;
    process.env.LAMBDA_TASK_ROOT = emptyRoot;
    vi.resetModules();
    try {
      await expect(import('../../functions/gateway.js')).rejects.toThrow(
        new RegExp(`guardrails\\.rules\\.lexicon\\.words: cannot read guardrails/lexicon\\.txt: .*${emptyRoot}/guardrails/lexicon\\.txt`),
      );
    } finally {
      process.env.LAMBDA_TASK_ROOT = previous;
    }
  });
});
