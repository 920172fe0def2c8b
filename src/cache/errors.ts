// Typed errors of the response cache. Store failures are not among them: a cache read or write
// that fails is reported to the caller's onError and the request goes on without the cache.

/** A cache request header the client sent is malformed; the gateway answers 400 naming it. */
export class CacheHeaderError extends Error {
  override readonly name = 'CacheHeaderError';
  readonly code = 'invalid_cache_header';
  constructor(
    readonly header: string,
    message: string,
  ) {
    super(message);
  }
}

/** A value canonicalJson cannot encode deterministically (NaN, a function, a class instance, ...). */
export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
}

/** A cache item that exists but does not decode to an entry; get treats it as a miss. */
export class CorruptCacheEntryError extends Error {
  override readonly name = 'CorruptCacheEntryError';
}
