/**
 * Continuing a reply another target started: the text shown so far becomes the start of the
 * assistant's message, and the next target is asked to go on from there (no gap, no repeat).
 */
import type { GenerationInput, ModelBackend } from '../backends/model-backend.js';

/** The input that asks a target to continue `partial` as the assistant's reply. */
export function continuationInput(input: GenerationInput, partial: string): GenerationInput {
  if (input.kind === 'text') return { kind: 'text', prompt: input.prompt + partial };
  if (input.continueFinalMessage) {
    // The client already started the reply: what was generated extends it.
    const last = input.messages.at(-1)!;
    return { ...input, messages: [...input.messages.slice(0, -1), { role: last.role, content: last.content + partial }] };
  }
  return { kind: 'chat', messages: [...input.messages, { role: 'assistant', content: partial }], continueFinalMessage: true };
}

/** A text prompt any completion target extends; a chat reply needs a target that takes continue_final_message. */
export function canContinue(backend: ModelBackend, input: GenerationInput): boolean {
  return input.kind === 'text' || backend.continuesChat === true;
}
