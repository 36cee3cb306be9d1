/**
 * Forwards one request to the version its key (or a random draw) lands on, streaming both
 * bodies: request chunks go up as they arrive, response chunks come down as they arrive (an SSE
 * stream passes each event through at once), with backpressure both ways.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { chooseVersionIndex } from './bucketing';
import type { CompiledRoute, CompiledVersion } from './table';

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

const kRemote = Symbol('gateway.remoteAddress');
type PeerSocket = Socket & { [kRemote]?: string | null };

/** The client's address, read once per connection. */
function remoteAddressOf(socket: Socket | null): string | undefined {
  if (!socket) return undefined;
  const peer = socket as PeerSocket;
  let remote = peer[kRemote];
  if (remote === undefined) remote = peer[kRemote] = socket.remoteAddress ?? null;
  return remote ?? undefined;
}

const kExchange = Symbol('gateway.exchange');
type ExchangeResponse = ServerResponse & { [kExchange]?: Exchange };

/** `res` 'close' (shared by every request, so that no closure is made per request). */
function onResponseClose(this: ExchangeResponse): void {
  this[kExchange]?.clientGone();
}

function onResponseDrain(this: ExchangeResponse): void {
  this[kExchange]?.drained();
}

/**
 * One proxied request: the undici dispatch handler (undici's own, callback-style handler
 * interface, which its client calls directly: no adapter, and the raw response headers without
 * an intermediate object), and its accounting. A class, so that the per-request state is one
 * object and the callbacks are shared.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private timeToFirstByteMs = -1;
  private finished = false;
  private clientClosed = false;
  private waitingForDrain = false;
  private abortUpstream: ((err?: Error) => void) | undefined = undefined;
  private resumeUpstream: (() => void) | undefined = undefined;
  private readonly startedAt = performance.now();

  constructor(
    private readonly res: ExchangeResponse,
    private readonly route: CompiledRoute,
    private readonly version: CompiledVersion,
    private readonly options: ProxyOptions,
  ) {
    version.stats.start();
  }

  private finish(status: number, error: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.res[kExchange] = undefined;
    this.version.stats.finish(status, error, performance.now() - this.startedAt, this.timeToFirstByteMs);
  }

  /** The client went away before the response was complete: stop the upstream request. */
  clientGone(): void {
    if (this.finished) return;
    this.clientClosed = true;
    this.abortUpstream?.(new ClientClosedError());
    this.finish(this.status || 499, false);
  }

  drained(): void {
    this.waitingForDrain = false;
    this.resumeUpstream?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.clientClosed) abort(new ClientClosedError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // informational responses are not relayed
    this.resumeUpstream = resume;
    this.status = statusCode;
    const res = this.res;
    const out: OutgoingHttpHeaders = {};
    let connection: string | undefined;
    let hasLength = false;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1').toLowerCase();
      const value = rawHeaders[i + 1]!.toString('latin1');
      if (HOP_BY_HOP.has(name)) {
        if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
        continue;
      }
      if (name === 'content-length') hasLength = true;
      const previous = out[name];
      if (previous === undefined) out[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else out[name] = name === 'set-cookie' ? [previous as string, value] : `${previous as string}, ${value}`;
    }
    if (connection !== undefined) {
      const extra = connectionTokens(connection);
      if (extra) for (const token of extra) delete out[token];
    }
    out[VERSION_HEADER] = this.version.name;
    if (statusText) res.writeHead(statusCode, statusText, out);
    else res.writeHead(statusCode, out);
    // Send the headers now, so that a streamed response's client sees them before the first event.
    if (!hasLength) res.flushHeaders();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.timeToFirstByteMs < 0) this.timeToFirstByteMs = performance.now() - this.startedAt;
    if (!this.res.write(chunk)) {
      if (!this.waitingForDrain) {
        this.waitingForDrain = true;
        this.res.once('drain', onResponseDrain);
      }
      return false;
    }
    return true;
  }

  onComplete(): void {
    if (this.timeToFirstByteMs < 0) this.timeToFirstByteMs = performance.now() - this.startedAt;
    this.res.end();
    this.finish(this.status, this.status >= 500);
  }

  onError(err: Error): void {
    const res = this.res;
    const route = this.route;
    const version = this.version;
    if (this.clientClosed || err instanceof ClientClosedError) {
      this.finish(this.status || 499, false);
      return;
    }
    this.options.onUpstreamError?.(route.target, version.name, err);
    const timedOut = TIMEOUT_CODES.has((err as { code?: string }).code ?? '');
    if (!res.headersSent) {
      const errorStatus = timedOut ? 504 : 502;
      this.finish(errorStatus, true);
      sendError(
        res,
        errorStatus,
        timedOut ? 'upstream_timeout' : 'upstream_unavailable',
        `version ${version.name} of ${route.target}: ${timedOut ? 'timed out' : 'unreachable'} (${err.message})`,
        version.name,
      );
    } else {
      // The response had started: the only honest signal left is a broken connection.
      this.finish(this.status, true);
      res.destroy(err);
    }
  }
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
  // One pass over the raw request headers: the ones to forward, and what the gateway needs of them
  // (reading req.headers would build a second, lower-cased copy of them all).
  const raw = req.rawHeaders;
  const headers: string[] = [];
  let key: string | undefined;
  let connection: string | undefined;
  let forwardedFor: string | undefined;
  let hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      else if (lower === 'transfer-encoding') hasBody = true;
      continue;
    }
    switch (lower) {
      case 'host':
      case 'expect':
        continue;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
        continue;
      case KEY_HEADER:
        key = key === undefined ? value : `${key}, ${value}`;
        break;
      case 'content-length':
        if (value !== '0') hasBody = true;
        break;
    }
    headers.push(name, value);
  }
  if (connection !== undefined) {
    const extra = connectionTokens(connection);
    if (extra) {
      for (let i = headers.length - 2; i >= 0; i -= 2) if (extra.has(headers[i]!.toLowerCase())) headers.splice(i, 2);
    }
  }
  const remote = remoteAddressOf(req.socket);
  if (remote) forwardedFor = forwardedFor ? `${forwardedFor}, ${remote}` : remote;
  if (forwardedFor) headers.push('x-forwarded-for', forwardedFor);

  const version = route.versions[chooseVersionIndex(route.ranges, route.salt, key)]!;
  const exchange = new Exchange(res as ExchangeResponse, route, version, options);
  (res as ExchangeResponse)[kExchange] = exchange;
  res.on('close', onResponseClose);

  version.pool.dispatch(
    {
      path: version.basePath + rest,
      method: req.method ?? 'GET',
      headers,
      body: hasBody ? req : null,
      headersTimeout: options.upstreamTimeoutMs,
      bodyTimeout: options.upstreamTimeoutMs,
    },
    exchange,
  );
}
