/**
 * Bearer-token auth for the /v1 routes, with roles: `viewer` reads (GET), `operator` also acts
 * (POST, PUT, DELETE...: start and the operator actions). Tokens are configured by their SHA-256
 * (src/config.ts: API_TOKENS_FILE, API_TOKENS, API_TOKEN); the caller's name is what the rollout
 * records as `by`. Without any token configured, the API is open (and `by` is "anonymous").
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { ApiRole, ApiTokenEntry } from '../config';
import { ApiError } from './errors';

/** Who made a request: the token's name and role. */
export interface Caller {
  name: string;
  role: ApiRole;
}

/** What `by` is when the API runs without tokens: nobody can be told apart. */
export const ANONYMOUS = 'anonymous';

/** The role a request needs: reads are a viewer's, everything else an operator's. */
export function roleNeeded(method: string): ApiRole {
  return method === 'GET' || method === 'HEAD' ? 'viewer' : 'operator';
}

const RANK: Record<ApiRole, number> = { viewer: 1, operator: 2 };

/**
 * Requires `Authorization: Bearer <token>` naming one of `tokens` (401 otherwise) with the role
 * the method needs (403 otherwise), and leaves the caller in `res.locals.caller`. The token's
 * SHA-256 is compared with every entry's in constant time, all of them each time.
 */
export function tokenAuth(tokens: readonly ApiTokenEntry[]): RequestHandler {
  const entries = tokens.map((t) => ({ ...t, digest: Buffer.from(t.sha256, 'hex') }));
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header.trim());
    if (!match) {
      next(new ApiError(401, 'unauthorized', `missing bearer token: send Authorization: Bearer <token> (a token with role ${roleNeeded(req.method)} or above)`));
      return;
    }
    const digest = createHash('sha256').update(match[1]!, 'utf8').digest();
    let found: (typeof entries)[number] | undefined;
    for (const entry of entries) {
      // No early exit: the time taken does not say which entry (if any) matched.
      if (timingSafeEqual(digest, entry.digest) && !found) found = entry;
    }
    if (!found) {
      next(new ApiError(401, 'unauthorized', 'invalid bearer token'));
      return;
    }
    const needed = roleNeeded(req.method);
    if (RANK[found.role] < RANK[needed]) {
      next(
        new ApiError(
          403,
          'forbidden',
          `token "${found.name}" has role ${found.role}; ${req.method} ${req.baseUrl}${req.path} needs role ${needed} (viewer: reads only; operator: start and actions)`,
        ),
      );
      return;
    }
    setCaller(res, { name: found.name, role: found.role });
    next();
  };
}

function setCaller(res: Response, caller: Caller): void {
  (res.locals as { caller?: Caller }).caller = caller;
}

/** Who made the request, for the audit (`by`): the token's name, or "anonymous" when the API has no tokens. */
export function callerName(res: Response | Request['res']): string {
  return ((res?.locals as { caller?: Caller } | undefined)?.caller?.name) ?? ANONYMOUS;
}
