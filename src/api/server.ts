/**
 * The API's HTTP server, the one main.ts runs and the tests listen on. Node answers what never
 * becomes a request (a malformed request line, oversized headers, a stalled request) by itself,
 * with empty bodies; here those answers carry the API's JSON error envelope too.
 */
import http, { type RequestListener, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError, clip, errorBody, parserError, rawErrorResponse } from './errors';

/** How long a socket answered with a parser error may still send before it is dropped. */
const LINGER_MS = 2_000;

export function createApiServer(app: RequestListener, options: ServerOptions = {}): Server {
  // Node's own Host check answers an empty 400; the same rule, in the envelope, is below.
  const server = http.createServer({ ...options, requireHostHeader: false }, (req, res) => {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      sendNow(res, new ApiError(400, 'invalid_request', 'an HTTP/1.1 request must carry a Host header'));
      return;
    }
    app(req, res);
  });
  const maxHeaderSize = options.maxHeaderSize ?? http.maxHeaderSize;
  const answered = new WeakSet<Duplex>();

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // The parser reports every later chunk of an answered socket again: one answer is enough.
    if (answered.has(socket)) return;
    answered.add(socket);
    if (err.code === 'ECONNRESET' || !socket.writable || responseStarted(socket)) {
      socket.destroy();
      return;
    }
    endWith(socket, parserError(err, maxHeaderSize));
  });

  // CONNECT is a tunnel request, not an API call; without this Node just drops the connection.
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    endWith(socket, new ApiError(405, 'method_not_allowed', `${req.method} is not supported; see the REST API in the README`));
  });

  // Node answers an `Expect` other than 100-continue with an empty 417 unless this is handled.
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    sendNow(res, new ApiError(417, 'expectation_failed', `expect "${clip(req.headers.expect ?? '')}" is not supported; only 100-continue is`));
  });

  return server;
}

/** The envelope on a response Express never saw; the connection closes after it. */
function sendNow(res: http.ServerResponse, err: ApiError): void {
  const body = JSON.stringify(errorBody(err));
  res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

/**
 * Writes the error and closes. What the client still sends is read (and dropped) for a while,
 * so that closing does not reset the connection under a response it has yet to read.
 */
function endWith(socket: Duplex, err: ApiError): void {
  socket.end(rawErrorResponse(err));
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** As Node itself checks before answering a parser error: no bytes of a response sent yet. */
function responseStarted(socket: Duplex): boolean {
  const message = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  return Boolean(message?.headersSent);
}

export interface ApiServer {
  server: Server;
  url: string;
  port: number;
  /** Stops accepting, lets requests in flight finish for `graceMs`, then drops what is left. */
  close(graceMs?: number): Promise<void>;
}

/** createApiServer(app) listening on host:port (0: a free port). */
export async function listenApi(app: RequestListener, { port = 0, host = '127.0.0.1', ...options }: ServerOptions & { port?: number; host?: string } = {}): Promise<ApiServer> {
  const server = createApiServer(app, options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    server,
    port: address.port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    close: (graceMs = 0) =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
      })),
  };
}
