// Route decisions and fallbacks as CloudWatch EMF: the lines Powertools writes are captured.
import { expect, it } from 'vitest';
import { emitRequestMetrics } from '../../src/telemetry/index.js';
import { capturedMetrics as capture, type EmfLine } from '../helpers/captured-metrics.js';

const named = (lines: EmfLine[], name: string) => lines.filter((l) => l._aws.CloudWatchMetrics[0]!.Metrics.some((m) => m.Name === name));

it('counts the route decision by rule kind, each fallback by trigger, and continuations', () => {
  const { metrics, lines } = capture();
  emitRequestMetrics(metrics, { status: 200, latencyMs: 12, routeReason: 'words', fallbacks: ['timeout', 'stream_cut', 'cannot_continue', 'stream_cut'] });
  const route = named(lines, 'RouteDecisions');
  expect(route).toHaveLength(1);
  expect(route[0]).toMatchObject({ RouteReason: 'words', RouteDecisions: 1 });
  const fallbacks = named(lines, 'Fallbacks').map((l) => [l.Trigger, l.Fallbacks]);
  expect(fallbacks).toEqual([
    ['timeout', 1],
    ['stream_cut', 2],
    ['cannot_continue', 1],
  ]);
  expect(named(lines, 'Continuations')[0]).toMatchObject({ Continuations: 2 });
  // A dimension of one line never leaks into the next.
  expect(named(lines, 'Requests')[0]!.Trigger).toBeUndefined();
});

it('emits no routing metrics for a request to a plain model', () => {
  const { metrics, lines } = capture();
  emitRequestMetrics(metrics, { status: 200, latencyMs: 3 });
  expect(named(lines, 'RouteDecisions')).toEqual([]);
  expect(named(lines, 'Fallbacks')).toEqual([]);
});
