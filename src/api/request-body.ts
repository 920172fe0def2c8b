// Reading a request's JSON body within a byte limit, whatever content-length claims.
import { clientClosedRequest, payloadTooLarge, unsupportedMediaType } from './errors.js';
import { parseJsonBody } from './safe-json.js';

export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(contentType)) throw unsupportedMediaType();
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw payloadTooLarge(maxBytes);

  // Count while reading: a missing or lying content-length must not let a huge body in.
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      // Reading fails only when the upload breaks off: the client is gone (499, not a 500).
      const { done, value } = await reader.read().catch(() => {
        throw clientClosedRequest();
      });
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw payloadTooLarge(maxBytes);
      }
      chunks.push(value);
    }
  }
  return parseJsonBody(Buffer.concat(chunks).toString('utf8'));
}
