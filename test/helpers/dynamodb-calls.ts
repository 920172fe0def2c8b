// Wraps a real DynamoDB document client's send to record every call (command, condition, when it
// started and ended) and, for fault tests, to delay or fail chosen calls. The store stays real.
import type { Store } from '../../src/store/index.js';

export interface DynamoDbCall {
  command: string;
  /** The partition key the call addresses, when it names one. */
  pk?: string;
  condition?: string;
  start: number;
  end?: number;
  failed?: boolean;
  /** The name of the error the call ended with. */
  error?: string;
}

export interface CallInterceptor {
  /** Runs before the call is sent; may wait, or throw to fail the call without sending it. */
  before?(call: DynamoDbCall, input: Record<string, unknown>): Promise<void> | void;
  /** Runs after DynamoDB answered; may throw to lose the answer of a call that did land. */
  after?(call: DynamoDbCall): Promise<void> | void;
}

export interface CallRecorder {
  calls: DynamoDbCall[];
  intercept: CallInterceptor;
  reset(): void;
}

export function recordDynamoDbCalls(store: Store): CallRecorder {
  const recorder: CallRecorder = { calls: [], intercept: {}, reset: () => void (recorder.calls = []) };
  const client = store.client as unknown as { send: (command: { input: Record<string, unknown> }, ...rest: unknown[]) => Promise<unknown> };
  const send = client.send.bind(client);
  client.send = async (command, ...rest) => {
    const input = command.input ?? {};
    const key = input.Key as { pk?: string } | undefined;
    const call: DynamoDbCall = {
      command: command.constructor.name,
      pk: key?.pk,
      condition: input.ConditionExpression as string | undefined,
      start: performance.now(),
    };
    recorder.calls.push(call);
    try {
      await recorder.intercept.before?.(call, input);
      const out = await send(command, ...rest);
      await recorder.intercept.after?.(call);
      return out;
    } catch (error) {
      call.failed = true;
      call.error = (error as Error).name;
      throw error;
    } finally {
      call.end = performance.now();
    }
  };
  return recorder;
}

/**
 * How many round trips the calls that started before `moment` took one after another: 1 when they
 * all ran side by side (none started after another had ended), 0 when there were none.
 */
export function roundTripsBefore(calls: readonly DynamoDbCall[], moment: number): number {
  const before = calls.filter((c) => c.start < moment);
  let depth = 0;
  // The longest chain a → b with b starting after a ended.
  const chain = new Map<DynamoDbCall, number>();
  for (const call of [...before].sort((a, b) => a.start - b.start)) {
    const prior = before.filter((p) => p.end !== undefined && p.end <= call.start).map((p) => chain.get(p) ?? 1);
    const length = 1 + (prior.length ? Math.max(...prior) : 0);
    chain.set(call, length);
    depth = Math.max(depth, length);
  }
  return depth;
}
