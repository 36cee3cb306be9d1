/**
 * The gateway's HTTP server: `/{target}/{rest}` is proxied, `/admin/...` is the admin API,
 * `/metrics` is Prometheus text and `/healthz` says it is up.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { handleAdmin, type AdminContext } from './admin';
import { sendError } from './http-util';
import { GatewayMetrics } from './metrics';
import { proxyRequest, type ProxyOptions } from './proxy';
import { RouteStore } from './routes';
import { RouteTable, type PoolOptions } from './table';

export interface GatewayOptions {
  port: number;
  host?: string;
  /** Where routes.json lives. */
  dataDir: string;
  /** When set, the admin API requires `Authorization: Bearer <adminToken>`. */
  adminToken?: string;
  logger?: Logger;
  /** Longest wait for an upstream's response headers (and longest silence in its body); default 60 s. */
  upstreamTimeoutMs?: number;
  pool?: PoolOptions;
}

export interface Gateway {
  url: string;
  port: number;
  metrics: GatewayMetrics;
  /** Stops accepting connections, lets in-flight requests finish (up to `graceMs`), closes upstream pools. */
  close(graceMs?: number): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? pino({ name: 'gateway', level: process.env.LOG_LEVEL ?? 'info' });
  const host = options.host ?? '127.0.0.1';
  const metrics = new GatewayMetrics();
  const store = new RouteStore(options.dataDir);
  await store.load();
  const table = new RouteTable(metrics, options.pool);
  for (const [target, route] of store.entries()) table.set(target, route);

  const admin: AdminContext = { store, table, metrics, adminToken: options.adminToken || undefined, logger };
  const proxyOptions: ProxyOptions = {
    upstreamTimeoutMs: options.upstreamTimeoutMs ?? 60_000,
    onUpstreamError: (target, version, err) => logger.debug({ target, version, err: err.message }, 'upstream error'),
  };

  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true }, (req, res) => {
    const url = req.url ?? '/';
    // The first path segment names a target, or one of the gateway's own resources.
    let end = 1;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 47 /* / */ || c === 63 /* ? */) break;
      end++;
    }
    const first = url.slice(1, end);
    const route = table.get(first);
    if (route !== undefined) {
      const rest = end >= url.length ? '/' : url.charCodeAt(end) === 63 ? `/${url.slice(end)}` : url.slice(end);
      proxyRequest(req, res, route, rest, proxyOptions);
      return;
    }
    const queryAt = url.indexOf('?');
    const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
    if (first === 'admin') {
      handleAdmin(req, res, pathname, admin).catch((err: unknown) => {
        logger.error({ err }, 'admin request failed');
        if (!res.headersSent) sendError(res, 500, 'internal', 'internal error');
        else res.destroy();
      });
      return;
    }
    if (first === 'metrics' && pathname === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          logger.error({ err }, 'metrics failed');
          sendError(res, 500, 'internal', 'internal error');
        },
      );
      return;
    }
    if (first === 'healthz' && pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end('{"status":"ok"}');
      return;
    }
    if (first === '') {
      sendError(res, 404, 'not_found', 'request /{target}/{path}; see /admin/routes for targets');
      return;
    }
    sendError(res, 404, 'unknown_target', `no route for target "${first}"`);
  });
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy(err);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, port, routes: [...store.entries()].map(([t]) => t), auth: Boolean(admin.adminToken) }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = (graceMs = 5_000) =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        closed,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
      server.closeAllConnections();
      await table.close(graceMs);
    })());

  return { url, port, metrics, close };
}
