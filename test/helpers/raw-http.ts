/**
 * HTTP over a bare TCP socket, for what no HTTP client sends: malformed request lines, oversized
 * or broken headers, stalled or trickling requests. Replies are parsed just enough to check the
 * envelope. Bytes go out and come back as latin1 (one char per byte).
 *
 * Two ways to wait for an answer:
 * - until the server closes the connection (`rawRequest`, `RawConnection.reply`): what arrived is
 *   taken as it is, the first response's body being all that followed its head;
 * - until the final response is complete by its content-length (`rawResponse`,
 *   `RawConnection.response`): interim responses (100 Continue) are dropped and the body is cut to
 *   its content-length and decoded as UTF-8.
 *
 * The socket is never half-closed unless asked: to Node's server that means the client gave up on
 * the request.
 */
import { connect, type Socket } from 'node:net';

/** What a raw socket received, parsed. */
export interface RawReply {
  /** Everything received (latin1). */
  text: string;
  /** The response's status; undefined when no status line came. */
  status?: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (end or reset) before the wait ended. */
  closed: boolean;
  /** A socket error (e.g. ECONNRESET), or for `response`, that no complete answer came in time. */
  error?: string;
  /** Milliseconds from connecting to closing (or to the end of the wait). */
  elapsedMs: number;
}

/** An open client connection with what it has received so far. */
export interface RawConnection {
  socket: Socket;
  received(): string;
  /** Resolves when the server closes the connection, or after `waitMs` (then `closed` is false). */
  reply(waitMs?: number): Promise<RawReply>;
  /**
   * Resolves once the final response has all its content-length bytes, the server closes, or
   * `waitMs` pass (then `error` says so): the final response, its body decoded up to its length.
   */
  response(waitMs?: number): Promise<RawReply>;
}

/**
 * Connects to 127.0.0.1:`port` and writes `data` (headers, maybe a start of a body), leaving the
 * connection open, or with `end`, half-closing it (the client says it will send nothing more).
 * A failed write (the server may answer and close before all is written, e.g. 431) is no error
 * here: it shows as the reply's `error`.
 */
export async function rawConnect(port: number, data?: string | Buffer, end = false): Promise<RawConnection> {
  const socket = connect({ port, host: '127.0.0.1' });
  const startedAt = Date.now();
  const chunks: Buffer[] = [];
  let error: string | undefined;
  let closedAt: number | undefined;
  const waiters = new Set<() => void>();
  const changed = () => waiters.forEach((check) => check());
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    changed();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedAt = Date.now();
      resolve();
      changed();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (data !== undefined) await Promise.race([closed, new Promise<void>((resolve) => socket.write(data, 'latin1', () => resolve()))]);
  if (end) socket.end();
  const received = () => Buffer.concat(chunks).toString('latin1');

  /** Whether `done` held (checked on each chunk and on close) before `waitMs` passed. */
  const until = (done: () => boolean, waitMs: number) =>
    new Promise<boolean>((resolve) => {
      const finish = (met: boolean) => {
        waiters.delete(check);
        clearTimeout(timer);
        resolve(met);
      };
      const check = () => {
        if (done()) finish(true);
      };
      const timer = setTimeout(() => finish(false), waitMs);
      waiters.add(check);
      check();
    });
  const isClosed = () => closedAt !== undefined;
  const outcome = (text: string) => ({ text, closed: isClosed(), ...(error ? { error } : {}), elapsedMs: (closedAt ?? Date.now()) - startedAt });

  return {
    socket,
    received,
    async reply(waitMs = 10_000) {
      await until(isClosed, waitMs);
      const text = received();
      return { ...parseResponse(text), ...outcome(text) };
    },
    async response(waitMs = 15_000) {
      const met = await until(() => isClosed() || isComplete(received()), waitMs);
      const text = received();
      const reply = { ...decodedFinalResponse(text), ...outcome(text) };
      return met || reply.error ? reply : { ...reply, error: `no complete answer within ${waitMs} ms` };
    },
  };
}

/** Sends `data` on a fresh connection and waits for the server to close it (or `waitMs`). */
export async function rawRequest(port: number, data: string | Buffer, waitMs = 10_000, end = false): Promise<RawReply> {
  const connection = await rawConnect(port, data, end);
  try {
    return await connection.reply(waitMs);
  } finally {
    connection.socket.destroy();
  }
}

/**
 * Sends `data` on a fresh connection and reads until the final response is complete (by
 * content-length), the server closes, or `timeoutMs` pass; then drops the connection.
 */
export async function rawResponse(port: number, data: string | Buffer, { timeoutMs = 15_000 }: { timeoutMs?: number } = {}): Promise<RawReply> {
  const connection = await rawConnect(port, data);
  try {
    return await connection.response(timeoutMs);
  } finally {
    connection.socket.destroy();
  }
}

/** Splits a raw HTTP/1.x response into status, headers and body (all that follows the head, as received). */
function parseResponse(text: string): Pick<RawReply, 'status' | 'headers' | 'body'> {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { ...(match ? { status: Number(match[1]) } : {}), headers, body: split === -1 ? '' : text.slice(split + 4) };
}

/** Drops interim responses (100 Continue): what is left starts with the final one. */
function finalResponse(text: string): string {
  return text.replace(/^(HTTP\/1\.[01] 1\d\d [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)+/, '');
}

/** A final response whose content-length bytes have all arrived. */
function isComplete(all: string): boolean {
  const text = finalResponse(all);
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) return false;
  const length = Number(/\r\ncontent-length:[ \t]*(\d+)/i.exec(text.slice(0, split))?.[1]);
  return Number.isInteger(length) && text.length - (split + 4) >= length;
}

/** The final response, its body cut to its content-length (when it has one) and decoded as UTF-8. */
function decodedFinalResponse(all: string): Pick<RawReply, 'status' | 'headers' | 'body'> {
  const response = parseResponse(finalResponse(all));
  const length = Number(response.headers['content-length']);
  if (Number.isInteger(length)) response.body = Buffer.from(response.body, 'latin1').subarray(0, length).toString('utf8');
  return response;
}
