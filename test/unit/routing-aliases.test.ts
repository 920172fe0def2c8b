import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AliasChangeError,
  DEFAULT_ROLLBACK_THRESHOLDS,
  ModelRegistry,
  assignTarget,
  describeTargets,
  judgeCanary,
  promoteCanary,
  rollbackAlias,
  setAlias,
  startCanary,
  stickinessKey,
  type RoleStats,
} from '../../src/routing/index.js';
import type { ModelBackend } from '../../src/backends/model-backend.js';

const at = new Date('2026-01-01T00:00:00Z');

describe('alias changes', () => {
  it('set, canary, weight change, promote and rollback step the revision and keep the history needed to undo', () => {
    const created = setAlias(undefined, 'qwen', 'qwen@3', at);
    expect(created).toMatchObject({ name: 'qwen', stable: 'qwen@3', revision: 1, lastChange: { action: 'set' } });
    expect(describeTargets(created)).toBe('qwen@3: 100');

    const canary = startCanary(created, 'qwen@4', 10, at);
    expect(describeTargets(canary)).toBe('qwen@3: 90, qwen@4: 10');
    expect(canary.revision).toBe(2);
    const heavier = startCanary(canary, 'qwen@4', 50, at);
    // Same canary: its counters (named by id) carry on through a weight change.
    expect(heavier.canary).toEqual({ target: 'qwen@4', weight: 50, id: canary.canary!.id });
    expect(startCanary(heavier, 'qwen@5', 5, at).canary!.id).not.toBe(canary.canary!.id);

    const promoted = promoteCanary(heavier, at);
    expect(promoted).toMatchObject({ stable: 'qwen@4', previous: 'qwen@3', revision: 4 });
    expect(promoted.canary).toBeUndefined();
    expect('canary' in promoted).toBe(false);

    const back = rollbackAlias(promoted, at);
    expect(back).toMatchObject({ stable: 'qwen@3', revision: 5, lastChange: { action: 'rollback' } });
    expect(() => rollbackAlias(back, at)).toThrow(AliasChangeError);
  });

  it('rollback with a canary running only ends the canary', () => {
    const alias = startCanary(setAlias(undefined, 'chat', 'a@1', at), 'a@2', 30, at);
    const back = rollbackAlias(alias, at, 'auto-rollback', 'error rate');
    expect(back).toMatchObject({ stable: 'a@1', lastChange: { action: 'auto-rollback', reason: 'error rate' } });
    expect(back.canary).toBeUndefined();
  });

  it('refuses changes that make no sense', () => {
    const alias = setAlias(undefined, 'chat', 'a@1', at);
    expect(() => startCanary(undefined, 'a@2', 10, at)).toThrow(/alias set/);
    expect(() => startCanary(alias, 'a@1', 10, at)).toThrow(/already the stable/);
    expect(() => startCanary(alias, 'a@2', 101, at)).toThrow(/0 to 100/);
    expect(() => startCanary(alias, 'a@2', 2.5, at)).toThrow(/whole percent/);
    expect(() => promoteCanary(alias, at)).toThrow(/no canary/);
  });
});

describe('sticky assignment', () => {
  const alias = startCanary(setAlias(undefined, 'qwen', 'qwen@3', at), 'qwen@4', 10, at);

  it('sends the same caller to the same target every time', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (keyId, session) => {
        const key = stickinessKey({ keyId, session });
        const first = assignTarget(alias, key).target;
        for (let i = 0; i < 5; i++) expect(assignTarget(alias, key).target).toBe(first);
      }),
    );
  });

  it('splits many callers by the weight (10 % within ±1 point over 20,000 callers)', () => {
    let canary = 0;
    const callers = 20_000;
    for (let i = 0; i < callers; i++) if (assignTarget(alias, stickinessKey({ keyId: 'k', session: `s${i}` })).role === 'canary') canary++;
    expect(Math.abs(canary / callers - 0.1)).toBeLessThan(0.01);
  });

  it('raising the weight only moves stable callers to the canary; lowering only moves canary callers back', () => {
    const heavier = startCanary(alias, 'qwen@4', 40, at);
    const lighter = startCanary(alias, 'qwen@4', 5, at);
    for (let i = 0; i < 5000; i++) {
      const key = stickinessKey({ keyId: `key${i}` });
      const now = assignTarget(alias, key).role;
      if (now === 'canary') expect(assignTarget(heavier, key).role).toBe('canary');
      if (now === 'stable') expect(assignTarget(lighter, key).role).toBe('stable');
    }
  });

  it('the session header and the user field narrow the key; nothing at all is a random caller', () => {
    expect(stickinessKey({ keyId: 'k', session: 's1' })).not.toBe(stickinessKey({ keyId: 'k', session: 's2' }));
    expect(stickinessKey({ keyId: 'k', user: 'u' })).toBe(stickinessKey({ keyId: 'k', session: 'u' }));
    expect(stickinessKey({})).not.toBe(stickinessKey({}));
  });

  it('weight 0 and 100 are all stable and all canary', () => {
    const none = startCanary(alias, 'qwen@4', 0, at);
    const all = startCanary(alias, 'qwen@4', 100, at);
    for (let i = 0; i < 200; i++) {
      expect(assignTarget(none, `k${i}`).role).toBe('stable');
      expect(assignTarget(all, `k${i}`).role).toBe('canary');
    }
  });
});

describe('judging a canary', () => {
  const stats = (requests: number, errors: number, ttftMs = 10): RoleStats => ({ requests, errors, ttftSumMs: ttftMs * requests, ttftCount: requests });
  const thresholds = DEFAULT_ROLLBACK_THRESHOLDS;

  it('waits for enough canary requests', () => {
    expect(judgeCanary({ stable: stats(100, 0), canary: stats(19, 19) }, thresholds).rollback).toBe(false);
    expect(judgeCanary({ stable: stats(100, 0), canary: stats(20, 20) }, thresholds).rollback).toBe(true);
  });

  it('compares the error rate with stable', () => {
    expect(judgeCanary({ stable: stats(100, 10), canary: stats(100, 14) }, thresholds).rollback).toBe(false);
    const verdict = judgeCanary({ stable: stats(100, 10), canary: stats(100, 16) }, thresholds);
    expect(verdict).toMatchObject({ rollback: true, reason: expect.stringMatching(/error rate 16\.0% vs 10\.0%/) });
  });

  it('compares time to first token with stable', () => {
    expect(judgeCanary({ stable: stats(50, 0, 100), canary: stats(50, 0, 190) }, thresholds).rollback).toBe(false);
    expect(judgeCanary({ stable: stats(50, 0, 100), canary: stats(50, 0, 250) }, thresholds)).toMatchObject({ rollback: true, reason: expect.stringMatching(/250 ms vs 100 ms/) });
  });

  it('without stable traffic, judges errors against zero and leaves time to first token alone', () => {
    expect(judgeCanary({ stable: stats(0, 0), canary: stats(40, 3, 9999) }, thresholds).rollback).toBe(true);
    expect(judgeCanary({ stable: stats(0, 0), canary: stats(40, 0, 9999) }, thresholds).rollback).toBe(false);
  });

  it('does nothing when automatic rollback is off', () => {
    expect(judgeCanary({ stable: stats(100, 0), canary: stats(100, 100) }, { ...thresholds, enabled: false }).rollback).toBe(false);
  });
});

describe('model registry', () => {
  const backend = (name: string, version: string) => ({ id: name, version: `${name}@${version}` }) as ModelBackend;

  it('serves exact versions and bare names, a bare name being its first listed version', () => {
    const registry = new ModelRegistry([backend('qwen', '3'), backend('qwen', '4'), backend('llama', '1')]);
    expect(registry.get('qwen')?.version).toBe('qwen@3');
    expect(registry.get('qwen@4')?.version).toBe('qwen@4');
    expect(registry.get('qwen@5')).toBeUndefined();
    expect([...registry.backends().keys()]).toEqual(['qwen', 'llama', 'qwen@3', 'qwen@4', 'llama@1']);
    expect(registry.backends().get('qwen')).toBe(registry.get('qwen@3'));
  });

  it('refuses the same version twice', () => {
    expect(() => new ModelRegistry([backend('a', '1'), backend('a', '1')])).toThrow(/twice/);
  });
});
