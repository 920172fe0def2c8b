// Powertools Metrics writing its EMF lines (what CloudWatch turns into metrics) into an array.
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { GATEWAY_SERVICE_NAME, METRIC_NAMESPACE } from '../../src/telemetry/metric-names.js';

export interface EmfLine {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [field: string]: unknown;
}

export function capturedMetrics(): { metrics: Metrics; lines: EmfLine[] } {
  const lines: EmfLine[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const metrics = new Metrics({ namespace: METRIC_NAMESPACE, serviceName: GATEWAY_SERVICE_NAME });
  // Powertools writes EMF through its `console`; point it at the capture instead of stdout.
  (metrics as unknown as { console: Console }).console = new Console({ stdout: sink, stderr: sink });
  return { metrics, lines };
}
