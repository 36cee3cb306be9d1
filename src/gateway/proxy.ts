/**
 * Forwards one request to the version its key (or a random draw) lands on, streaming both
 * bodies: request chunks go up as they arrive, response chunks come down as they arrive (an SSE
 * stream passes each event through at once), with backpressure both ways.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { chooseVersionIndex } from './bucketing';
import type { CompiledRoute } from './table';

export const VERSION_HEADER = 'x-canary-version';
export const KEY_HEADER = 'x-canary-key';

/** Headers that describe one connection, not the message; never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface ProxyOptions {
  /** Longest wait for the upstream's response headers, and longest silence inside its body. */
  upstreamTimeoutMs: number;
  onUpstreamError?: (target: string, version: string, err: Error) => void;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

class ClientClosedError extends Error {
  constructor() {
    super('client closed the connection');
  }
}

/** Connection-scoped header names listed in a Connection header (besides the standard ones). */
function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (!value || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  let tokens: Set<string> | undefined;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token && !HOP_BY_HOP.has(token) && token !== 'close') (tokens ??= new Set()).add(token);
  }
  return tokens;
}

function upstreamRequestHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const extra = connectionTokens(req.headers.connection);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower === 'host' || lower === 'expect' || extra?.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor ? `${forwardedFor}, ${raw[i + 1]!}` : raw[i + 1]!;
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  const remote = req.socket.remoteAddress;
  if (remote) forwardedFor = forwardedFor ? `${forwardedFor}, ${remote}` : remote;
  if (forwardedFor) out.push('x-forwarded-for', forwardedFor);
  return out;
}

function downstreamResponseHeaders(headers: IncomingHttpHeaders, version: string): OutgoingHttpHeaders {
  const extra = connectionTokens(typeof headers.connection === 'string' ? headers.connection : undefined);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || extra?.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  out[VERSION_HEADER] = version;
  return out;
}

function hasRequestBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

function sendError(res: ServerResponse, status: number, code: string, message: string, version: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [VERSION_HEADER]: version,
  });
  res.end(body);
}

/** Proxies `req` to the route's chosen version; `rest` is the path after the target ('/...', with query). */
export function proxyRequest(req: IncomingMessage, res: ServerResponse, route: CompiledRoute, rest: string, options: ProxyOptions): void {
  const keyHeader = req.headers[KEY_HEADER];
  const key = typeof keyHeader === 'string' ? keyHeader : undefined;
  const version = route.versions[chooseVersionIndex(route.ranges, route.salt, key)]!;
  const stats = version.stats;
  const startedAt = performance.now();
  stats.start();

  let controller: Dispatcher.DispatchController | undefined;
  let status = 0;
  let timeToFirstByteMs: number | undefined;
  let finished = false;
  let clientClosed = false;
  let waitingForDrain = false;

  const finish = (finalStatus: number, error: boolean) => {
    if (finished) return;
    finished = true;
    const outcome = { status: finalStatus, error, latencyMs: performance.now() - startedAt, timeToFirstByteMs };
    stats.finish(outcome);
  };

  const onDrain = () => {
    waitingForDrain = false;
    controller?.resume();
  };

  res.on('close', () => {
    if (finished) return;
    // The client went away before the response was complete: stop the upstream request.
    clientClosed = true;
    controller?.abort(new ClientClosedError());
    finish(status || 499, false);
  });

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (clientClosed) c.abort(new ClientClosedError());
    },
    onResponseStart(c, statusCode, headers, statusMessage) {
      if (statusCode < 200) return; // informational responses are not relayed
      controller = c;
      status = statusCode;
      const out = downstreamResponseHeaders(headers, version.name);
      if (statusMessage) res.writeHead(statusCode, statusMessage, out);
      else res.writeHead(statusCode, out);
      // Send the headers now, so that a streamed response's client sees them before the first event.
      if (typeof res.flushHeaders === 'function' && headers['content-length'] === undefined) res.flushHeaders();
    },
    onResponseData(c, chunk) {
      if (timeToFirstByteMs === undefined) timeToFirstByteMs = performance.now() - startedAt;
      if (!res.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        c.pause();
        res.once('drain', onDrain);
      }
    },
    onResponseEnd() {
      if (timeToFirstByteMs === undefined) timeToFirstByteMs = performance.now() - startedAt;
      res.end();
      finish(status, status >= 500);
    },
    onResponseError(_c, err) {
      if (clientClosed || err instanceof ClientClosedError) {
        finish(status || 499, false);
        return;
      }
      options.onUpstreamError?.(route.target, version.name, err);
      const timedOut = TIMEOUT_CODES.has((err as { code?: string }).code ?? '');
      if (!res.headersSent) {
        const errorStatus = timedOut ? 504 : 502;
        finish(errorStatus, true);
        sendError(
          res,
          errorStatus,
          timedOut ? 'upstream_timeout' : 'upstream_unavailable',
          `version ${version.name} of ${route.target}: ${timedOut ? 'timed out' : 'unreachable'} (${err.message})`,
          version.name,
        );
      } else {
        // The response had started: the only honest signal left is a broken connection.
        finish(status, true);
        res.destroy(err);
      }
    },
  };

  version.pool.dispatch(
    {
      path: version.basePath + rest,
      method: req.method ?? 'GET',
      headers: upstreamRequestHeaders(req),
      body: hasRequestBody(req) ? req : null,
      headersTimeout: options.upstreamTimeoutMs,
      bodyTimeout: options.upstreamTimeoutMs,
    },
    handler,
  );
}
