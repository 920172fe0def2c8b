import { ApiError, malformedJson } from './errors.js';

/**
 * Deepest nesting of arrays and objects a request body may have. OpenAI's request bodies need a
 * handful of levels; the bound keeps recursive code after parsing (validation, logging,
 * JSON.stringify) from overflowing the stack on a body nested thousands deep.
 */
export const MAX_JSON_DEPTH = 64;

/** Parses a request body as JSON, refusing bodies nested deeper than MAX_JSON_DEPTH with a 400. */
export function parseJsonBody(text: string): unknown {
  // Checked before parsing, so nothing deep is ever built; a malformed body may fail either way.
  if (nestingDepth(text) > MAX_JSON_DEPTH) {
    throw new ApiError(400, `The JSON body is nested too deeply: at most ${MAX_JSON_DEPTH} levels of arrays and objects are allowed.`, {
      code: 'json_too_deep',
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw malformedJson();
  }
}

/** The deepest bracket nesting in JSON text, skipping string contents; stops counting past the bound. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) deepest = depth;
      if (deepest > MAX_JSON_DEPTH) return deepest;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}
