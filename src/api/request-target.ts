import { ApiError } from './errors.js';

/** Methods the Fetch API refuses to carry (`new Request` throws): answered 405 by the adapters. */
const UNSUPPORTED_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

export function isUnsupportedMethod(method: string): boolean {
  return UNSUPPORTED_METHODS.has(method.toUpperCase());
}

export function unsupportedMethod(method: string): ApiError {
  return new ApiError(405, `The ${method.toUpperCase()} method is not supported by this API.`, {
    code: 'method_not_supported',
    headers: { allow: 'GET, POST, OPTIONS' },
  });
}

export function badRequestTarget(): ApiError {
  return new ApiError(400, 'The request target is not a path: send requests to a path such as /v1/chat/completions.', {
    code: 'invalid_request_target',
  });
}

/**
 * The URL of a request on the server's own origin, from the request target as sent: origin-form
 * (`/v1/models`) or absolute-form (`http://any.host/v1/models`, which HTTP/1.1 servers must
 * accept; only its path and query are kept). The Host header never goes into it, so an odd Host
 * can't break the URL. Anything else (`*`, `host:port`, garbage) is undefined.
 */
export function requestUrl(origin: string, target: string): string | undefined {
  if (target.startsWith('/')) {
    try {
      const url = new URL(origin);
      // Assigned, not concatenated: a target such as `//host/x` stays a path on our origin.
      const query = target.indexOf('?');
      url.pathname = query === -1 ? target : target.slice(0, query);
      url.search = query === -1 ? '' : target.slice(query);
      return url.href;
    } catch {
      return undefined;
    }
  }
  if (!/^https?:\/\//i.test(target)) return undefined;
  let absolute: URL;
  try {
    absolute = new URL(target);
  } catch {
    return undefined;
  }
  return requestUrl(origin, absolute.pathname + absolute.search);
}

/** A percent-encoded path segment as text; a broken escape (`%ZZ`, a lone surrogate) is a 400. */
export function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, 'The URL path has a malformed percent-escape.', { code: 'invalid_request_target' });
  }
}
