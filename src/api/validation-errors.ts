import type { z } from 'zod';
import { ApiError } from './errors.js';

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

/**
 * Custom issues raised by the schemas carry their OpenAI error code in `params.code` and may use
 * `{param}` (the field path), `{value}` (the value sent) and `{got}` (its type, described) in their message.
 */
export interface CustomIssueParams {
  code: string | null;
}

/** `['messages', 0, 'content']` → `messages[0].content`, the way OpenAI names a field. */
export function formatParam(path: readonly PathKey[]): string | null {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? null : out;
}

/** What a client sent, in words: "a string", "an array", "null". */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a decimal';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/**
 * A sent value as message text, never throwing: `String()` throws on an object whose
 * toString/valueOf are not functions (`{"toString": {}}`), so only primitives are printed.
 */
export function printable(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return describeValue(value);
}

const EXPECTED_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  array: 'an array',
  object: 'an object',
};

function expectedName(expected: string): string {
  return EXPECTED_NAMES[expected] ?? expected;
}

/** OpenAI's list style: 'a', 'b', and 'c'. */
function quotedList(values: readonly unknown[]): string {
  const quoted = values.map((v) => `'${printable(v)}'`);
  if (quoted.length <= 2) return quoted.join(' and ');
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted[quoted.length - 1]}`;
}

function hasInput(issue: Issue): boolean {
  return 'input' in issue && issue.input !== undefined;
}

/** The first problem of a failed parse as one 400 in OpenAI's wording, `param` naming the field. */
export function validationError(issues: readonly Issue[]): ApiError {
  const first = issues[0];
  if (!first) return new ApiError(400, 'The request body is invalid.');
  return describeIssue(first, first.path);
}

function describeIssue(issue: Issue, path: readonly PathKey[]): ApiError {
  const param = formatParam(path);
  const name = param ?? 'body';
  const fail = (message: string, code: string | null) => new ApiError(400, message, { param, code });

  switch (issue.code) {
    case 'invalid_union': {
      // Prefer the branch that got past the top-level type check: it says what is wrong inside.
      const deeper = issue.errors.find((branch) => branch[0] && !(branch[0].code === 'invalid_type' && branch[0].path.length === 0));
      if (deeper) return describeIssue(deeper[0], [...path, ...deeper[0].path]);
      const expected = issue.errors.flatMap((branch) => (branch[0]?.code === 'invalid_type' ? [expectedName(branch[0].expected)] : []));
      if (!hasInput(issue)) return fail(`Missing required parameter: '${name}'.`, 'missing_required_parameter');
      return fail(`Invalid type for '${name}': expected one of ${expected.join(' or ')}, but got ${describeValue(issue.input)} instead.`, 'invalid_type');
    }
    case 'invalid_type': {
      if (!hasInput(issue)) return fail(`Missing required parameter: '${name}'.`, 'missing_required_parameter');
      return fail(
        `Invalid type for '${name}': expected ${expectedName(issue.expected)}, but got ${describeValue(issue.input)} instead.`,
        'invalid_type',
      );
    }
    case 'too_small': {
      const input = issue.input;
      if (issue.origin === 'array' && Array.isArray(input)) {
        if (input.length === 0) {
          return fail(
            `Invalid '${name}': empty array. Expected an array with minimum length ${issue.minimum}, but got an empty array instead.`,
            'empty_array',
          );
        }
        return fail(
          `Invalid '${name}': array too short. Expected an array with minimum length ${issue.minimum}, but got an array with length ${input.length} instead.`,
          'array_below_min_length',
        );
      }
      if (issue.origin === 'string') {
        return fail(`Invalid '${name}': empty string. Expected a string with minimum length ${issue.minimum}, but got an empty string instead.`, 'empty_string');
      }
      const kind = issue.origin === 'int' ? 'integer' : 'decimal';
      const bound = issue.inclusive === false ? 'less than or equal to the exclusive minimum' : 'less than the minimum';
      return fail(`${printable(input)} is ${bound} of ${issue.minimum} - '${name}'`, `${kind}_below_min_value`);
    }
    case 'too_big': {
      const input = issue.input;
      if (issue.origin === 'array' && Array.isArray(input)) {
        return fail(
          `Invalid '${name}': array too long. Expected an array with maximum length ${issue.maximum}, but got an array with length ${input.length} instead.`,
          'array_above_max_length',
        );
      }
      if (issue.origin === 'string') {
        return fail(`Invalid '${name}': string too long. Expected a string with maximum length ${issue.maximum}.`, 'string_above_max_length');
      }
      const kind = issue.origin === 'int' ? 'integer' : 'decimal';
      const bound = issue.inclusive === false ? 'greater than or equal to the exclusive maximum' : 'greater than the maximum';
      return fail(`${printable(input)} is ${bound} of ${issue.maximum} - '${name}'`, `${kind}_above_max_value`);
    }
    case 'invalid_value':
      return fail(`Invalid value: '${printable(issue.input)}'. Supported values are: ${quotedList(issue.values)}.`, 'invalid_value');
    case 'custom': {
      const params = issue.params as Partial<CustomIssueParams> | undefined;
      const message = issue.message
        .replaceAll('{param}', name)
        .replaceAll('{value}', printable(issue.input))
        .replaceAll('{got}', describeValue(issue.input));
      return fail(message, params?.code === undefined ? 'invalid_value' : params.code);
    }
    default:
      return fail(`Invalid '${name}': ${issue.message}`, null);
  }
}
