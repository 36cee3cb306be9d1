/** Optional bearer-token auth for the /v1 routes. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError } from './errors';

/** Requires `Authorization: Bearer <token>`; compares in constant time. */
export function bearerAuth(token: string): RequestHandler {
  const expected = digest(token);
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match) {
      next(new ApiError(401, 'unauthorized', 'missing bearer token: send Authorization: Bearer <API_TOKEN>'));
      return;
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      next(new ApiError(401, 'unauthorized', 'invalid bearer token'));
      return;
    }
    next();
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
