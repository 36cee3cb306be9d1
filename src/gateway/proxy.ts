/**
 * Forwards one request to the version its key (or a random draw) lands on, streaming both
 * bodies: response chunks come down as they arrive (an SSE stream passes each event through at
 * once), with backpressure both ways.
 *
 * A request body is held back until it is complete or `bodyBufferBytes` large, and only then
 * does the request go upstream (a large body then streams up as it arrives, holding one of the
 * origin's upload slots until it ends). So a client that sends headers and a few bytes and then
 * stalls holds no upstream connection: it only costs its own socket until the body-idle timeout
 * cuts it. An origin with `maxActive` requests in flight, or `maxUploading` bodies still
 * arriving, gets no more: 503 `upstream_overloaded` at once, counted as a rejection, not as the
 * version's request.
 *
 * LLM requests (POST .../chat/completions or .../completions) are metered on the side
 * (src/gateway/llm.ts): a bounded copy of the request body is kept, and each response chunk is
 * handed to the meter after it was written to the client. Other traffic keeps no copy and parses
 * nothing. A route's mirror (src/gateway/mirror.ts) gets a copy of the chosen requests once their
 * live exchange has ended.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { chooseVersionIndex } from './bucketing';
import { CLOSE, sendError } from './http-util';
import { LlmResponseMeter, llmKindOf, llmOutcome, parseLlmRequest, type LlmKind, type LlmOutcome } from './llm';
import type { ClientErrorReason, RejectReason } from './metrics';
import type { CompiledMirror, Mirrorer } from './mirror';
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
  /** Longest silence inside a request body before the gateway gives up on it (0: no limit). */
  bodyIdleTimeoutMs: number;
  /** Request bodies up to this size are received whole before the request goes upstream. */
  bodyBufferBytes: number;
  /** Largest request body copied to meter an LLM request or mirror it. */
  bodyCopyBytes: number;
  mirrorer?: Mirrorer;
  onUpstreamError?: (target: string, version: string, err: Error) => void;
  /** A request the gateway answered or cut itself for the client's fault. */
  onClientError?: (reason: ClientErrorReason) => void;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** undici refusing the request itself (a header it will not send): the client's request, not the upstream, is at fault. */
const REQUEST_REFUSED_CODES: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/** Stops the upstream request of an exchange that already ended (the client went away, or the gateway cut it). */
class ExchangeEndedError extends Error {
  constructor() {
    super('the client went away or the gateway cut the request');
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
type ExchangeRequest = IncomingMessage & { [kExchange]?: Exchange };

/** `res` 'close' (shared by every request, so that no closure is made per request). */
function onResponseClose(this: ExchangeResponse): void {
  this[kExchange]?.clientGone();
}

function onResponseDrain(this: ExchangeResponse): void {
  this[kExchange]?.drained();
}

function onRequestData(this: ExchangeRequest, chunk: Buffer): void {
  this[kExchange]?.bodyData(chunk);
}

function onRequestEnd(this: ExchangeRequest): void {
  this[kExchange]?.bodyEnd();
}

function onBodyIdle(exchange: Exchange): void {
  exchange.bodyIdle();
}

/**
 * One proxied request: the undici dispatch handler (undici's own, callback-style handler
 * interface, which its client calls directly: no adapter, and the raw response headers without
 * an intermediate object), its request body on the way in, and its accounting. A class, so that
 * the per-request state is one object and the callbacks are shared.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private timeToFirstByteMs = -1;
  private finished = false;
  /** Sent to the upstream (and so counted in its load and, at the end, in the version's stats). */
  private dispatched = false;
  private holdsUploadSlot = false;
  private waitingForDrain = false;
  /** The body received so far, while it is held back; undefined once it went upstream. */
  private chunks: Buffer[] | undefined = undefined;
  private buffered = 0;
  private idleTimer: NodeJS.Timeout | undefined = undefined;
  private abortUpstream: ((err?: Error) => void) | undefined = undefined;
  private resumeUpstream: (() => void) | undefined = undefined;
  private readonly startedAt = performance.now();
  /** Set (before start) for an LLM request: its response is metered. */
  llmKind: LlmKind | undefined = undefined;
  /** Set (before start) when this request is to be mirrored. */
  mirror: CompiledMirror | undefined = undefined;
  private meter: LlmResponseMeter | undefined = undefined;
  /** The whole request body when a copy is kept (null: none), for metering and mirroring; undefined when not kept. */
  private requestBody: Buffer | null | undefined = undefined;
  /** The copy of a streamed body, while it arrives; undefined when none is kept (or it grew too large). */
  private copy: Buffer[] | undefined = undefined;
  private copyBytes = 0;

  constructor(
    private readonly req: ExchangeRequest,
    private readonly res: ExchangeResponse,
    private readonly route: CompiledRoute,
    private readonly version: CompiledVersion,
    private readonly options: ProxyOptions,
    private readonly path: string,
    private readonly headers: string[],
    /** The path after the target, for a mirror's copy. */
    private readonly rest: string,
  ) {}

  /** Sends the request upstream now if it has no body, else once its body is complete or large enough. */
  start(hasBody: boolean): void {
    if (!hasBody) {
      if (this.keepsBody()) this.requestBody = null;
      this.dispatch(null);
      return;
    }
    const req = this.req;
    req[kExchange] = this;
    this.chunks = [];
    req.on('data', onRequestData);
    req.on('end', onRequestEnd);
    const idleMs = this.options.bodyIdleTimeoutMs;
    if (idleMs > 0) this.idleTimer = setTimeout(onBodyIdle, idleMs, this);
  }

  bodyData(chunk: Buffer): void {
    this.idleTimer?.refresh();
    const chunks = this.chunks;
    if (chunks === undefined) {
      // Streaming upstream: undici reads the body itself; a copy is kept on the side if wanted.
      const copy = this.copy;
      if (copy !== undefined) {
        this.copyBytes += chunk.length;
        if (this.copyBytes > this.options.bodyCopyBytes) this.copy = undefined;
        else copy.push(chunk);
      }
      return;
    }
    chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered >= this.options.bodyBufferBytes) this.streamBody(chunks);
  }

  bodyEnd(): void {
    this.stopIdleTimer();
    this.releaseUploadSlot();
    const chunks = this.chunks;
    if (chunks === undefined) {
      if (this.copy !== undefined) this.requestBody = Buffer.concat(this.copy, this.copyBytes);
      this.copy = undefined;
      return;
    }
    this.chunks = undefined;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.buffered);
    if (this.keepsBody() && body.length <= this.options.bodyCopyBytes) this.requestBody = body;
    this.dispatch(body);
  }

  private keepsBody(): boolean {
    return this.llmKind !== undefined || this.mirror !== undefined;
  }

  /** A large body: what arrived so far is put back in front of the stream, which goes upstream. */
  private streamBody(chunks: Buffer[]): void {
    const req = this.req;
    this.chunks = undefined;
    req.pause(); // until undici reads it
    // What arrived so far comes through bodyData again once undici reads it: the copy starts empty.
    if (this.keepsBody()) this.copy = [];
    req.unshift(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.buffered));
    this.dispatch(req);
  }

  /** The body sent nothing for bodyIdleTimeoutMs. */
  bodyIdle(): void {
    if (this.finished) return;
    // Paused means the gateway is not reading (a busy upstream): not the client's silence.
    if (this.dispatched && this.req.isPaused()) {
      this.idleTimer?.refresh();
      return;
    }
    this.options.onClientError?.('body_idle_timeout');
    const res = this.res;
    // Answer first: aborting an upstream that is reading the body destroys the client's socket.
    if (!res.headersSent) {
      sendError(res, 408, 'body_timeout', `the request body sent nothing for ${this.options.bodyIdleTimeoutMs} ms`, undefined, this.version.errorHeaders);
    } else {
      res.destroy();
    }
    this.abandon();
  }

  private dispatch(body: Buffer | IncomingMessage | null): void {
    const version = this.version;
    const upstream = version.upstream;
    const streaming = body === this.req;
    if (upstream.active >= upstream.maxActive) return this.reject('upstream_overloaded', 'too many requests are waiting for it');
    if (streaming && upstream.uploading >= upstream.maxUploading) return this.reject('uploads_overloaded', 'too many request bodies are still arriving for it');
    upstream.active++;
    if (streaming) {
      upstream.uploading++;
      this.holdsUploadSlot = true;
    }
    this.dispatched = true;
    version.stats.start();
    upstream.pool.dispatch(
      {
        path: this.path,
        method: this.req.method ?? 'GET',
        headers: this.headers,
        body,
        headersTimeout: this.options.upstreamTimeoutMs,
        bodyTimeout: this.options.upstreamTimeoutMs,
      },
      this,
    );
  }

  private reject(reason: RejectReason, why: string): void {
    const version = this.version;
    version.stats.reject(reason);
    this.close();
    sendError(this.res, 503, 'upstream_overloaded', `version ${version.name} of ${this.route.target} is overloaded: ${why}`, undefined, version.errorHeaders);
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  private releaseUploadSlot(): void {
    if (this.holdsUploadSlot) {
      this.holdsUploadSlot = false;
      this.version.upstream.uploading--;
    }
  }

  /** Ends the exchange's claims (once): listeners, timer, the upstream's load. False if already ended. */
  private close(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.res[kExchange] = undefined;
    this.req[kExchange] = undefined;
    this.stopIdleTimer();
    this.releaseUploadSlot();
    if (this.dispatched) this.version.upstream.active--;
    return true;
  }

  /** `ended`: how the response ended — whole, failed (a 5xx the gateway answered, a broken stream) or the client went away. */
  private finish(status: number, error: boolean, ended: 'complete' | 'failed' | 'gone'): void {
    if (!this.close() || !this.dispatched) return;
    const now = performance.now();
    const latencyMs = now - this.startedAt;
    this.version.stats.finish(status, error, latencyMs, this.timeToFirstByteMs);
    if (this.llmKind !== undefined || this.mirror !== undefined) this.afterFinish(status, error, ended, now, latencyMs);
  }

  /** An LLM request's counts, and the mirror's copy: off the path of plain traffic. */
  private afterFinish(status: number, error: boolean, ended: 'complete' | 'failed' | 'gone', now: number, latencyMs: number): void {
    const body = this.requestBody;
    const kind = this.llmKind;
    const answer = this.meter?.end(now);
    this.meter = undefined;
    const request = kind !== undefined && body ? parseLlmRequest(kind, body) : undefined;
    let outcome: LlmOutcome | undefined;
    if (answer && request) {
      outcome = llmOutcome(request, answer);
      this.version.stats.finishLlm(outcome, ended === 'complete');
    }
    const mirror = this.mirror;
    // A client that went away got no answer to compare; a body not kept (too large) cannot be copied.
    if (mirror === undefined || ended === 'gone' || body === undefined) return;
    this.options.mirrorer?.submit({
      mirror,
      method: this.req.method ?? 'GET',
      rest: this.rest,
      headers: this.headers,
      body,
      ...(kind !== undefined ? { llmKind: kind } : {}),
      ...(request ? { llmRequest: request } : {}),
      baseline: { status, error, latencyMs, ...(outcome && ended === 'complete' ? { llm: outcome } : {}) },
    });
  }

  /** The gateway gives up on the request for the client's fault: it does not count as the version's. */
  abandon(): void {
    if (!this.close()) return;
    if (this.dispatched) this.version.stats.abandon();
    this.abortUpstream?.(new ExchangeEndedError());
  }

  /** The client went away before the response was complete: stop the upstream request. */
  clientGone(): void {
    if (this.finished) return;
    const abort = this.abortUpstream;
    this.finish(this.status || 499, false, 'gone'); // first: the abort calls onError at once, which must see it finished
    abort?.(new ExchangeEndedError());
  }

  drained(): void {
    this.waitingForDrain = false;
    this.resumeUpstream?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.finished) abort(new ExchangeEndedError());
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
    if (this.llmKind !== undefined && statusCode < 300) {
      const type = out['content-type'];
      this.meter = new LlmResponseMeter(this.llmKind, typeof type === 'string' && type.includes('text/event-stream'), this.startedAt);
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
    const written = this.res.write(chunk);
    this.meter?.push(chunk, performance.now()); // after the client has it: metering never delays a chunk
    if (!written) {
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
    this.finish(this.status, this.status >= 500, 'complete');
  }

  onError(err: Error): void {
    if (this.finished) return; // ended by the gateway or the client; the abort comes back here
    const res = this.res;
    const route = this.route;
    const version = this.version;
    const code = (err as { code?: string }).code ?? '';
    if (REQUEST_REFUSED_CODES.has(code) && !res.headersSent) {
      this.options.onClientError?.('bad_request');
      this.abandon();
      sendError(res, 400, 'bad_request', `the request cannot be forwarded: ${err.message}`, undefined, version.errorHeaders);
      return;
    }
    this.options.onUpstreamError?.(route.target, version.name, err);
    const timedOut = TIMEOUT_CODES.has(code);
    if (!res.headersSent) {
      const errorStatus = timedOut ? 504 : 502;
      this.finish(errorStatus, true, 'failed');
      sendError(
        res,
        errorStatus,
        timedOut ? 'upstream_timeout' : 'upstream_unavailable',
        `version ${version.name} of ${route.target}: ${timedOut ? 'timed out' : 'unreachable'} (${err.message})`,
        undefined,
        version.errorHeaders,
      );
    } else {
      // The response had started: the only honest signal left is a broken connection.
      this.finish(this.status, true, 'failed');
      res.destroy(err);
    }
  }
}

/**
 * The gateway gives up on the proxied request `res` answers (a malformed or late request, seen
 * by the server's clientError): it does not count as its version's request.
 */
export function abandonExchange(res: ServerResponse | undefined): void {
  (res as ExchangeResponse | undefined)?.[kExchange]?.abandon();
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
  let hasHost = false;
  const match = route.match;
  const matchHeader = match?.header;
  let matchValue: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === matchHeader) matchValue = matchValue === undefined ? value : `${matchValue}, ${value}`;
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      else if (lower === 'transfer-encoding') hasBody = true;
      continue;
    }
    switch (lower) {
      case 'host':
        hasHost = true;
        continue;
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
  if (!hasHost && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
    // RFC 9112 §3.2 (node's own check is off, as its answer has no body).
    options.onClientError?.('bad_request');
    sendError(res, 400, 'bad_request', 'an HTTP/1.1 request must have a Host header', undefined, CLOSE);
    return;
  }
  const remote = remoteAddressOf(req.socket);
  if (remote) forwardedFor = forwardedFor ? `${forwardedFor}, ${remote}` : remote;
  if (forwardedFor) headers.push('x-forwarded-for', forwardedFor);

  // With a match, only requests carrying one of its values are split; the others go to its `others` version.
  const index = match !== undefined && (matchValue === undefined || !match.values.has(matchValue)) ? match.othersIndex : chooseVersionIndex(route.ranges, route.salt, key);
  const version = route.versions[index]!;
  const exchange = new Exchange(req, res as ExchangeResponse, route, version, options, version.basePath + rest, headers, rest);
  if (hasBody) exchange.llmKind = llmKindOf(req.method, rest);
  const mirror = route.mirror;
  // Mirrored requests are drawn at random (not by key): a key's user is not always in the shadow.
  if (mirror !== undefined && index === mirror.fromIndex && options.mirrorer !== undefined && Math.random() * 100 < mirror.percent) exchange.mirror = mirror;
  (res as ExchangeResponse)[kExchange] = exchange;
  res.on('close', onResponseClose);
  exchange.start(hasBody);
}
