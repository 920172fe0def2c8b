// A backend with guardrails around it: the prompt is checked before anything is admitted or run
// (a block is an error, a mask rewrites it), and the output stream is filtered on its way out, so
// the cache records filtered text (the gateway keys entries by the profile's id too, so another
// rule set is never served them). A block on output ends the generation with "content_filter".
import type { GenerationInput, GenerationParams, ModelBackend, PrepareContext, PreparedGeneration } from '../backends/model-backend.js';
import type { GenerationEvent } from '../engine/index.js';
import type { GuardrailSet } from './guardrail-set.js';
import { filterText, GuardrailStream, type GuardrailHit } from './guardrail-stream.js';

/** The rules one request runs under. `id` changes whenever any rule or term does. */
export interface GuardrailProfile {
  readonly id: string;
  readonly input: GuardrailSet;
  readonly output: GuardrailSet;
}

/** A prompt matched a block rule: the request is refused (400, code "content_filter"). */
export class GuardrailBlockedError extends Error {
  override readonly name = 'GuardrailBlockedError';
  constructor(readonly rule: string) {
    super(`The prompt was blocked by the gateway's content filter (rule "${rule}").`);
  }
}

export interface GuardrailObserver {
  /** Called once for the prompt and once when the output ends (even early), with every rule that matched. */
  onHits(where: 'input' | 'output', hits: readonly GuardrailHit[]): void;
  /** The prompt as the model gets it (masked), for logs that keep prompts. */
  onInput?(input: GenerationInput): void;
}

export function guardedBackend(backend: ModelBackend, profile: GuardrailProfile, observer: GuardrailObserver): ModelBackend {
  return {
    id: backend.id,
    version: backend.version,
    price: backend.price,
    created: backend.created,
    ownedBy: backend.ownedBy,
    contextLength: backend.contextLength,
    ...(backend.continuesChat === undefined ? {} : { continuesChat: backend.continuesChat }),
    async prepare(input: GenerationInput, params: GenerationParams, context?: PrepareContext): Promise<PreparedGeneration> {
      const prepared = await backend.prepare(checkInput(input, profile.input, observer), params, context);
      return {
        promptTokens: prepared.promptTokens,
        maxTokens: prepared.maxTokens,
        run: (signal) => filterEvents(prepared.run(signal), profile.output, prepared.promptTokens, observer),
        ...(prepared.version === undefined ? {} : { version: prepared.version }),
        ...(prepared.reserveMicros === undefined ? {} : { reserveMicros: prepared.reserveMicros }),
        ...(prepared.spentMicros ? { spentMicros: prepared.spentMicros.bind(prepared) } : {}),
        ...(prepared.servedBy ? { servedBy: prepared.servedBy.bind(prepared) } : {}),
      };
    },
  };
}

function checkInput(input: GenerationInput, set: GuardrailSet, observer: GuardrailObserver): GenerationInput {
  const hits: GuardrailHit[] = [];
  const check = (text: string): string => {
    const result = filterText(set, text);
    hits.push(...result.hits);
    if (result.blocked) {
      observer.onHits('input', hits);
      throw new GuardrailBlockedError(result.hits.at(-1)!.rule);
    }
    return result.text;
  };
  // Each message on its own: a term split between two messages is not in either.
  const checked: GenerationInput =
    input.kind === 'chat' ? { ...input, messages: input.messages.map((m) => ({ ...m, content: check(m.content) })) } : { kind: 'text', prompt: check(input.prompt) };
  observer.onHits('input', hits);
  observer.onInput?.(checked);
  return checked;
}

/**
 * A hand-written iterator, not a generator: one stopped before its first read must still stop the
 * source and report. Token events keep their count (admission charges by them), text filtered.
 */
function filterEvents(source: AsyncIterable<GenerationEvent>, set: GuardrailSet, promptTokens: number, observer: GuardrailObserver): AsyncIterable<GenerationEvent> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
      const inner = source[Symbol.asyncIterator]();
      const stream = new GuardrailStream(set);
      let tokens = 0;
      let done = false;
      const finish = async (): Promise<void> => {
        if (done) return;
        done = true;
        observer.onHits('output', stream.hits);
        await inner.return?.();
      };
      return {
        async next(): Promise<IteratorResult<GenerationEvent>> {
          if (done) return { done: true, value: undefined };
          let result: IteratorResult<GenerationEvent>;
          try {
            result = await inner.next();
          } catch (error) {
            await finish();
            throw error;
          }
          if (result.done) {
            await finish();
            return result;
          }
          const event = result.value;
          if (event.type === 'token') {
            tokens++;
            const text = stream.push(event.text);
            if (!stream.blocked) return { done: false, value: { ...event, text } };
            await finish();
            return { done: false, value: { type: 'finish', finishReason: 'content_filter', text, usage: { promptTokens, completionTokens: tokens } } };
          }
          const text = stream.push(event.text) + stream.end();
          // Lets the source run its cleanup now rather than when the consumer asks once more.
          await finish();
          return { done: false, value: { ...event, text, finishReason: stream.blocked ? 'content_filter' : event.finishReason } };
        },
        async return(): Promise<IteratorResult<GenerationEvent>> {
          await finish();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
