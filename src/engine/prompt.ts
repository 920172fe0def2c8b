// A generation's prompt as token ids: refused before tokenizing when it provably can't fit the
// context, and encoded without holding up the process when it is long.
import { chatSections, type ChatMessage, type PromptSection } from './chat-template.js';
import { EngineError } from './errors.js';
import { minimumTokens } from './prompt-encoding.js';
import type { ModelTokenizer } from './tokenizer.js';

export type PromptInput = { kind: 'chat'; messages: readonly ChatMessage[] } | { kind: 'text'; prompt: string };

/**
 * Prompt ids for `input`. `completionTokens` is what the request asks for (0 when it sets no
 * max_tokens): a prompt whose fewest possible tokens leave no room for it in `contextLength`
 * is refused with context_length_exceeded before a single token is computed.
 */
export async function encodePrompt(
  tokenizer: ModelTokenizer,
  input: PromptInput,
  contextLength: number,
  completionTokens = 0,
): Promise<number[]> {
  const sections: PromptSection[] = input.kind === 'chat' ? chatSections(tokenizer, tokenizer.chatTemplate, input.messages) : textSections(tokenizer, input.prompt);
  let fewest = 0;
  for (const section of sections) fewest += 'id' in section ? 1 : minimumTokens(section.text, tokenizer.tokenBound);
  if (fewest >= contextLength || fewest + completionTokens > contextLength) {
    const completion = completionTokens > 0 ? ` and ${completionTokens} are requested for the completion` : '';
    throw new EngineError(
      'context_length_exceeded',
      `This model's maximum context length is ${contextLength} tokens, but the prompt has at least ${fewest} tokens${completion}. Please reduce the prompt or max_tokens.`,
    );
  }
  const ids: number[] = [];
  for (const section of sections) {
    if ('id' in section) ids.push(section.id);
    else for (const id of await tokenizer.encodeYielding(section.text)) ids.push(id);
  }
  return ids;
}

/** A plain-text prompt as encodeWithSpecialTokens encodes it: the post-processor's ids around the text. */
function textSections(tokenizer: ModelTokenizer, text: string): PromptSection[] {
  const { prefix, suffix } = tokenizer.textAffixes;
  return [...prefix.map((id) => ({ id })), ...(text.length > 0 ? [{ text }] : []), ...suffix.map((id) => ({ id }))];
}
