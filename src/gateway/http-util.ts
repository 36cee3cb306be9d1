import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ErrorBody {
  error: { code: string; message: string; issues?: Array<{ path: string; message: string }> };
}

/** Headers of an answer after which the connection is closed (the request cannot be trusted to end where it says). */
export const CLOSE: Readonly<Record<string, string>> = { connection: 'close' };

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/**
 * The gateway's one way of answering an error (admin, proxy, unknown targets). When the request
 * has a body the gateway did not read (a 401, 413, 408 or 503 answers before it), the rest is
 * discarded, and if some of it is still to arrive the answer says `connection: close` and the
 * connection closes after it: otherwise a keep-alive client waits on a connection whose next
 * request can only start once a body nobody reads has been sent.
 */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  issues?: ErrorBody['error']['issues'],
  headers?: Readonly<Record<string, string>>,
): void {
  const body: ErrorBody = { error: { code, message } };
  if (issues) body.error.issues = issues;
  sendJson(res, status, body, discardBody(res.req) ? { ...headers, ...CLOSE } : headers);
}

/** Lets the rest of a request's body be read and dropped; true if some of it has not arrived yet. */
function discardBody(req: IncomingMessage | undefined): boolean {
  if (!req || req.readableEnded) return false;
  req.resume();
  return !req.complete && hasBody(req);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * A whole HTTP/1.1 error response as text, in the same JSON shape, for answers written straight
 * to a socket (malformed requests, where there is no ServerResponse). Always closes.
 */
export function rawErrorResponse(status: number, code: string, message: string): string {
  const text = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(text)}\r\n` +
    'cache-control: no-store\r\nconnection: close\r\n\r\n' +
    text
  );
}

export class BodyError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a JSON request body of at most `limit` bytes. Rejects with a BodyError: 413 as soon as
 * the body is known to be too large (from its content-length, or once that many bytes arrived),
 * 408 when it sends nothing for `idleTimeoutMs` (0: no limit), 400 when it is cut short or not
 * JSON. Nothing more is read after a rejection; sendError discards the rest.
 */
export function readJson(req: IncomingMessage, limit = 1 << 20, idleTimeoutMs = 0): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new BodyError(413, 'body_too_large', `the body is larger than ${limit} bytes`);
    if (Number(req.headers['content-length']) > limit) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    const timer =
      idleTimeoutMs > 0
        ? setTimeout(() => fail(new BodyError(408, 'body_timeout', `the body sent nothing for ${idleTimeoutMs} ms`)), idleTimeoutMs)
        : undefined;
    const onData = (chunk: Buffer) => {
      timer?.refresh();
      size += chunk.length;
      if (size > limit) fail(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      try {
        resolve(parseJson(Buffer.concat(chunks, size).toString('utf8')));
      } catch (err) {
        reject(err);
      }
    };
    const onCut = () => fail(new BodyError(400, 'body_incomplete', 'the request ended before its body was complete'));
    const cleanup = () => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('close', onCut).off('error', onCut);
    };
    const fail = (err: BodyError) => {
      cleanup();
      reject(err);
    };
    req.on('data', onData).on('end', onEnd).on('close', onCut).on('error', onCut);
  });
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw new BodyError(400, 'invalid_json', 'the body is empty; expected JSON');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BodyError(400, 'invalid_json', `the body is not valid JSON: ${(err as Error).message}`);
  }
}
