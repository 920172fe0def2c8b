import { Template } from '@huggingface/jinja';
import type { ModelTokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RenderChatOptions {
  addGenerationPrompt: boolean;
  bosToken?: string;
  eosToken?: string;
}

export type ChatTemplateErrorCode = 'template_missing' | 'template_invalid' | 'template_render_failed';

/** The chat template is absent, does not parse, or refused the messages (raise_exception). */
export class ChatTemplateError extends Error {
  readonly code: ChatTemplateErrorCode;

  constructor(code: ChatTemplateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatTemplateError';
    this.code = code;
  }
}

// A process serves a handful of models; the cap only guards against unbounded growth.
const MAX_CACHED_TEMPLATES = 32;
const compiledTemplates = new Map<string, Template>();

function compile(template: string): Template {
  let compiled = compiledTemplates.get(template);
  if (compiled) return compiled;
  try {
    compiled = new Template(template);
  } catch (error) {
    throw new ChatTemplateError('template_invalid', `the chat template does not parse: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (compiledTemplates.size >= MAX_CACHED_TEMPLATES) compiledTemplates.clear();
  compiledTemplates.set(template, compiled);
  return compiled;
}

/** Renders messages to the prompt text, with the variables Hugging Face templates expect. */
export function renderChat(template: string, messages: readonly ChatMessage[], opts: RenderChatOptions): string {
  const compiled = compile(template);
  try {
    return compiled.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt,
      bos_token: opts.bosToken ?? '',
      eos_token: opts.eosToken ?? '',
    });
  } catch (error) {
    throw new ChatTemplateError('template_render_failed', `the chat template rejected the messages: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export interface EncodeChatOptions {
  /** Defaults to true: the prompt ends where the assistant's reply begins. */
  addGenerationPrompt?: boolean;
}

/**
 * Prompt ids for messages, where special tokens come only from the template: message strings
 * are escaped before rendering (so `<|im_end|>` typed by a user stays text), the rendered prompt
 * is split on the specials the template wrote, and the text between them is encoded plainly.
 * `template` defaults to the tokenizer's own chat template.
 */
export function encodeChat(
  tokenizer: ModelTokenizer,
  messages: readonly ChatMessage[],
  opts?: EncodeChatOptions,
): number[];
export function encodeChat(
  tokenizer: ModelTokenizer,
  template: string,
  messages: readonly ChatMessage[],
  opts?: EncodeChatOptions,
): number[];
export function encodeChat(
  tokenizer: ModelTokenizer,
  templateOrMessages: string | readonly ChatMessage[],
  messagesOrOpts?: readonly ChatMessage[] | EncodeChatOptions,
  maybeOpts?: EncodeChatOptions,
): number[] {
  const explicit = typeof templateOrMessages === 'string';
  const template = explicit ? templateOrMessages : tokenizer.chatTemplate;
  const messages = (explicit ? messagesOrOpts : templateOrMessages) as readonly ChatMessage[];
  const opts = ((explicit ? maybeOpts : messagesOrOpts) ?? {}) as EncodeChatOptions;
  return encodeSections(tokenizer, chatSections(tokenizer, template, messages, opts));
}

/** One piece of a rendered prompt: a special token the template wrote, or text to encode plainly. */
export type PromptSection = { readonly id: number } | { readonly text: string };

/**
 * The rendered prompt split into special tokens and plain text (unescaped), before any
 * tokenizing: what encodeChat encodes, and what a byte bound can be checked on first.
 */
export function chatSections(
  tokenizer: ModelTokenizer,
  template: string | undefined,
  messages: readonly ChatMessage[],
  opts: EncodeChatOptions = {},
): PromptSection[] {
  if (template === undefined) {
    throw new ChatTemplateError('template_missing', 'the model package has no chat template (tokenizer_config.json or chat_template.jinja)');
  }
  const specials = specialTokenPatterns(tokenizer);
  const rendered = renderChat(template, escapeStrings(messages, specials), {
    addGenerationPrompt: opts.addGenerationPrompt ?? true,
    bosToken: tokenizer.bosToken,
    eosToken: tokenizer.eosToken,
  });
  return renderedSections(tokenizer, rendered, specials);
}

function encodeSections(tokenizer: ModelTokenizer, sections: readonly PromptSection[]): number[] {
  const ids: number[] = [];
  for (const section of sections) {
    if ('id' in section) ids.push(section.id);
    // A loop, not push(...spread): a long prompt would overflow the argument limit.
    else for (const id of tokenizer.encode(section.text)) ids.push(id);
  }
  return ids;
}

// Private-use code points: ESCAPE <index> ESCAPE_END stands for specials[index], and
// ESCAPE ESCAPE_END for a literal ESCAPE, so unescaping is exact for any input.
const ESCAPE = '\uE000';
const ESCAPE_END = '\uE001';
const ESCAPED = new RegExp(`${ESCAPE}(\\d*)${ESCAPE_END}`, 'g');

interface SpecialPatterns {
  list: string[];
  escape: RegExp;
  split: RegExp | undefined;
}

const patternCache = new WeakMap<ModelTokenizer, SpecialPatterns>();

function specialTokenPatterns(tokenizer: ModelTokenizer): SpecialPatterns {
  let patterns = patternCache.get(tokenizer);
  if (patterns) return patterns;
  // Longest first, so a special that contains another wins, as in the tokenizers' splitter.
  const list = [...tokenizer.specialTokens.keys()].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  const alternatives = list.map(escapeRegExp);
  patterns = {
    list,
    escape: new RegExp([...alternatives, ESCAPE].join('|'), 'g'),
    split: list.length > 0 ? new RegExp(alternatives.join('|'), 'g') : undefined,
  };
  patternCache.set(tokenizer, patterns);
  return patterns;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function escapeStrings(value: unknown, specials: SpecialPatterns): any {
  if (typeof value === 'string') {
    return value.replace(specials.escape, (match) =>
      match === ESCAPE ? ESCAPE + ESCAPE_END : ESCAPE + specials.list.indexOf(match) + ESCAPE_END,
    );
  }
  if (Array.isArray(value)) return value.map((item) => escapeStrings(item, specials));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, escapeStrings(item, specials)]));
  }
  return value;
}

function unescape(text: string, specials: SpecialPatterns): string {
  return text.replace(ESCAPED, (_, index: string) => (index === '' ? ESCAPE : specials.list[Number(index)]));
}

function renderedSections(tokenizer: ModelTokenizer, rendered: string, specials: SpecialPatterns): PromptSection[] {
  const sections: { text: string; special?: string }[] = [];
  let last = 0;
  for (const match of specials.split ? rendered.matchAll(specials.split) : []) {
    sections.push({ text: rendered.slice(last, match.index) }, { text: match[0], special: match[0] });
    last = match.index + match[0].length;
  }
  sections.push({ text: rendered.slice(last) });

  // Honour lstrip/rstrip of the specials as the Hugging Face tokenizers do.
  sections.forEach((section, i) => {
    const token = section.special === undefined ? undefined : tokenizer.specialTokens.get(section.special);
    if (token?.lstrip && i > 0) sections[i - 1].text = sections[i - 1].text.trimEnd();
    if (token?.rstrip && i + 1 < sections.length) sections[i + 1].text = sections[i + 1].text.trimStart();
  });

  return sections.flatMap((section): PromptSection[] => {
    if (section.special !== undefined) return [{ id: tokenizer.specialTokens.get(section.special)!.id }];
    return section.text.length > 0 ? [{ text: unescape(section.text, specials) }] : [];
  });
}
