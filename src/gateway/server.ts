/**
 * The gateway's HTTP server: `/{target}/{rest}` is proxied, `/admin/...` is the admin API,
 * `/metrics` is Prometheus text and `/healthz` says it is up.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { handleAdmin, type AdminContext } from './admin';
import { GATEWAY_DEFAULTS } from './defaults';
import { CLOSE, rawErrorResponse, sendError } from './http-util';
import { GatewayMetrics, type ClientErrorReason } from './metrics';
import { Mirrorer } from './mirror';
import { abandonExchange, proxyRequest, type ProxyOptions } from './proxy';
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
  /** Longest time a client may take to send a request's headers (408); default 10 s. */
  headersTimeoutMs?: number;
  /**
   * Longest time a client may take to send a whole request, headers and body (408; 0: no
   * limit); default 5 min. Only receiving the request counts: a long (SSE) response is not cut.
   */
  requestTimeoutMs?: number;
  /**
   * Longest silence inside a request body: then 408 if the response has not started, else the
   * connection is closed; 0: no limit; default 15 s.
   */
  bodyIdleTimeoutMs?: number;
  /** Request bodies up to this size are received whole before the request goes upstream; default 64 KiB. */
  bodyBufferBytes?: number;
  /** How long the counters of a version that left its route stay readable, then are dropped; default 60 s. */
  metricsRetentionMs?: number;
  /** Largest request body copied to meter an LLM request or mirror it; default 1 MiB. */
  bodyCopyBytes?: number;
  /** Most mirrored requests in flight; beyond, copies are dropped (counted); default 64. */
  mirrorMaxInFlight?: number;
  /** Most mirror-evaluator calls in flight; default 8. */
  evaluatorMaxInFlight?: number;
  /** Longest a mirror-evaluator call may take; default 10 s. */
  evaluatorTimeoutMs?: number;
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
  const metrics = new GatewayMetrics({ retentionMs: options.metricsRetentionMs });
  const store = new RouteStore(options.dataDir);
  await store.load();
  const table = new RouteTable(metrics, options.pool);
  for (const [target, route] of store.entries()) table.set(target, route);

  const bodyIdleTimeoutMs = options.bodyIdleTimeoutMs ?? GATEWAY_DEFAULTS.bodyIdleTimeoutMs;
  const admin: AdminContext = { store, table, metrics, adminToken: options.adminToken || undefined, logger, bodyIdleTimeoutMs };
  const onClientError = (reason: ClientErrorReason) => metrics.clientError(reason);
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? GATEWAY_DEFAULTS.upstreamTimeoutMs;
  const mirrorer = new Mirrorer({
    maxInFlight: options.mirrorMaxInFlight ?? GATEWAY_DEFAULTS.mirrorMaxInFlight,
    upstreamTimeoutMs,
    evaluatorMaxInFlight: options.evaluatorMaxInFlight ?? GATEWAY_DEFAULTS.evaluatorMaxInFlight,
    evaluatorTimeoutMs: options.evaluatorTimeoutMs ?? GATEWAY_DEFAULTS.evaluatorTimeoutMs,
    onError: (what, err) => logger.debug({ err: err.message }, `${what} failed`),
  });
  const proxyOptions: ProxyOptions = {
    upstreamTimeoutMs,
    bodyIdleTimeoutMs,
    bodyBufferBytes: options.bodyBufferBytes ?? GATEWAY_DEFAULTS.bodyBufferBytes,
    bodyCopyBytes: options.bodyCopyBytes ?? GATEWAY_DEFAULTS.bodyCopyBytes,
    mirrorer,
    onUpstreamError: (target, version, err) => logger.debug({ target, version, err: err.message }, 'upstream error'),
    onClientError,
  };
  const headersTimeout = options.headersTimeoutMs ?? GATEWAY_DEFAULTS.headersTimeoutMs;
  const requestTimeout = options.requestTimeoutMs ?? GATEWAY_DEFAULTS.requestTimeoutMs;

  const serverOptions: http.ServerOptions = {
    keepAliveTimeout: 65_000,
    noDelay: true,
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: checkingInterval(headersTimeout, requestTimeout),
    requireHostHeader: false, // checked by the gateway, which answers with a JSON body
  };
  const server = http.createServer(serverOptions, (req, res) => {
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
    if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
      onClientError('bad_request');
      sendError(res, 400, 'bad_request', 'an HTTP/1.1 request must have a Host header', undefined, CLOSE);
      return;
    }
    if (first === 'admin') {
      handleAdmin(req, res, pathname, admin).catch((err: unknown) => {
        logger.error({ err }, 'admin request failed');
        if (!res.headersSent) sendError(res, 500, 'internal', 'internal error');
        else res.destroy();
      });
      return;
    }
    if (first === 'metrics' && pathname === '/metrics') {
      metrics.scrape().then(
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
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, onClientError));
  server.on('checkExpectation', (_req: http.IncomingMessage, res: http.ServerResponse) =>
    sendError(res, 417, 'expectation_failed', 'the only expectation supported is "Expect: 100-continue"'),
  );
  // Without a listener node drops a CONNECT's connection without a word.
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => endWith(socket, CONNECT_ANSWER));

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
      await Promise.all([table.close(graceMs), mirrorer.close()]);
    })());

  return { url, port, metrics, close };
}

/** How often node looks for requests past headersTimeout / requestTimeout: a quarter of the shorter. */
function checkingInterval(headersTimeoutMs: number, requestTimeoutMs: number): number {
  const shortest = Math.min(...[headersTimeoutMs, requestTimeoutMs].filter((ms) => ms > 0), 120_000);
  return Math.max(25, Math.min(30_000, Math.floor(shortest / 4)));
}

const CONNECT_ANSWER = rawErrorResponse(405, 'method_not_allowed', 'CONNECT is not supported: the gateway is not a forward proxy');
const HEADERS_TOO_LARGE_ANSWER = rawErrorResponse(431, 'headers_too_large', `the request's headers are larger than ${http.maxHeaderSize} bytes`);
const REQUEST_TIMEOUT_ANSWER = rawErrorResponse(408, 'request_timeout', 'the request was not received in time');

function clientErrorReason(code: string | undefined): ClientErrorReason | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') return 'headers_too_large';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout'; // headersTimeout and requestTimeout alike
  if (code?.startsWith('HPE_')) return 'bad_request';
  return undefined; // a reset or broken connection: nothing to answer
}

/**
 * Node's parser refused the request, or it was not received in time: a JSON answer on the raw
 * socket (unless a response has already started there), then the connection is closed.
 */
function answerClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket, count: (reason: ClientErrorReason) => void): void {
  if (socket.writableEnded) return; // answered already (a parser error repeats per chunk); closes once flushed
  const reason = clientErrorReason(err.code);
  if (reason !== undefined) count(reason);
  const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
  if (reason === undefined || !socket.writable || inFlight?.headersSent) socket.destroy();
  else endWith(socket, answerFor(reason, err));
  // A proxied request in progress here is the client's failure, not its version's. Stopped after
  // the answer is written: stopping an upload in progress destroys the socket.
  abandonExchange(inFlight);
}

function answerFor(reason: ClientErrorReason, err: NodeJS.ErrnoException & { reason?: string }): string {
  if (reason === 'headers_too_large') return HEADERS_TOO_LARGE_ANSWER;
  if (reason === 'request_timeout') return REQUEST_TIMEOUT_ANSWER;
  return rawErrorResponse(400, 'bad_request', `the request is not valid HTTP/1.1: ${err.reason ?? err.code}`);
}

function destroySocket(this: Socket): void {
  this.destroy();
}

/** Writes a last answer and closes once it is flushed (not waiting on a client that keeps its side open). */
function endWith(socket: Socket, answer: string): void {
  socket.on('error', destroySocket);
  socket.once('finish', destroySocket);
  socket.end(answer);
}
