/**
 * The admin API: routes (read, replace, delete) and per-version metrics for the control plane.
 * Bearer-token protected when a token is configured.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { BodyError, readJson, sendError, sendJson } from './http-util';
import type { GatewayMetrics } from './metrics';
import { parseRoute, validateTarget, type RouteStore } from './routes';
import type { RouteTable } from './table';

export interface AdminContext {
  store: RouteStore;
  table: RouteTable;
  metrics: GatewayMetrics;
  adminToken?: string;
  logger: Logger;
  /** Longest silence inside a request body (0: no limit). */
  bodyIdleTimeoutMs: number;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

export function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const header = req.headers.authorization;
  if (typeof header !== 'string') return false;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) return false;
  // Compare digests so that neither the length nor the content leaks through timing.
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/** Handles a request whose path starts with /admin. */
export async function handleAdmin(req: IncomingMessage, res: ServerResponse, pathname: string, ctx: AdminContext): Promise<void> {
  if (!authorized(req, ctx.adminToken)) {
    sendError(res, 401, 'unauthorized', 'a valid "Authorization: Bearer <token>" header is required', undefined, {
      'www-authenticate': 'Bearer realm="model-canary-gateway"',
    });
    return;
  }
  const parts = pathname.split('/').filter((p) => p !== ''); // ['admin', 'routes', target?]
  const method = req.method ?? 'GET';
  const [, collection, target, ...extra] = parts;
  if (extra.length > 0) return notFound(res, pathname);

  if (collection === 'routes' && target === undefined) {
    if (method !== 'GET') return methodNotAllowed(res, 'GET');
    return sendJson(res, 200, ctx.store.toJSON());
  }

  if (collection === 'routes' && target !== undefined) {
    const name = safeDecode(target);
    if (method === 'GET') {
      const route = ctx.store.get(name);
      if (!route) return sendError(res, 404, 'unknown_target', `no route for target "${name}"`);
      return sendJson(res, 200, route);
    }
    if (method === 'PUT') {
      let body: unknown;
      try {
        body = await readJson(req, undefined, ctx.bodyIdleTimeoutMs);
      } catch (err) {
        if (!(err instanceof BodyError)) throw err;
        if (err.status === 408) ctx.metrics.clientError('body_idle_timeout');
        return sendError(res, err.status, err.code, err.message);
      }
      const parsed = parseRoute(name, body, ctx.store.get(name));
      if (!parsed.ok) {
        const summary = parsed.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
        return sendError(res, 400, 'invalid_route', `invalid route: ${summary}`, parsed.issues);
      }
      await ctx.store.set(name, parsed.value);
      ctx.table.set(name, parsed.value);
      ctx.logger.info({ target: name, route: parsed.value }, 'route set');
      return sendJson(res, 200, parsed.value);
    }
    if (method === 'DELETE') {
      const issues = validateTarget(name);
      if (issues.length > 0 || !ctx.store.get(name)) return sendError(res, 404, 'unknown_target', `no route for target "${name}"`);
      await ctx.store.delete(name);
      ctx.table.delete(name);
      ctx.logger.info({ target: name }, 'route deleted');
      res.writeHead(204).end();
      return;
    }
    return methodNotAllowed(res, 'GET, PUT, DELETE');
  }

  if (collection === 'metrics' && target !== undefined) {
    if (method !== 'GET') return methodNotAllowed(res, 'GET');
    const name = safeDecode(target);
    const snapshot = ctx.metrics.snapshot(name);
    if (!snapshot) return sendError(res, 404, 'unknown_target', `no route or metrics for target "${name}"`);
    return sendJson(res, 200, snapshot);
  }

  return notFound(res, pathname);
}

function notFound(res: ServerResponse, pathname: string): void {
  sendError(res, 404, 'not_found', `no admin resource at ${pathname}`);
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendError(res, 405, 'method_not_allowed', `allowed methods: ${allow}`, undefined, { allow });
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
