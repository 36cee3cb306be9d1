/**
 * HTTP over a bare TCP socket, for what no HTTP client sends: malformed request lines, oversized
 * or broken headers, stalled requests. The reply is parsed just enough to check the envelope.
 */
import { connect } from 'node:net';

export interface RawReply {
  /** The status of the final response (after any 100 Continue); undefined when none came. */
  status?: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: string;
  /** A socket error (e.g. ECONNRESET) or a timeout, instead of an answer. */
  error?: string;
}

/**
 * Sends `payload` to 127.0.0.1:port and reads the reply: done once a complete response
 * (by content-length) has arrived or the server closes. The socket is never half-closed first:
 * to Node's server that means the client gave up on the request.
 */
export function rawHttp(port: number, payload: string | Buffer, { timeoutMs = 15_000 }: { timeoutMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseReply(Buffer.concat(chunks).toString('latin1')), ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(`no complete answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (isComplete(Buffer.concat(chunks).toString('latin1'))) finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.on('close', () => finish());
    // The server may answer and close before all is written (e.g. 431): not an error here.
    socket.write(payload);
  });
}

/** Drops interim responses (100 Continue): the reply is the final one. */
function finalResponse(text: string): string {
  return text.replace(/^(HTTP\/1\.[01] 1\d\d [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)+/, '');
}

/** A final response whose content-length bytes have all arrived (latin1: one char per byte). */
function isComplete(all: string): boolean {
  const text = finalResponse(all);
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) return false;
  const length = Number(/\r\ncontent-length:[ \t]*(\d+)/i.exec(text.slice(0, split))?.[1]);
  return Number.isInteger(length) && text.length - (split + 4) >= length;
}

function parseReply(all: string): Omit<RawReply, 'error'> {
  const text = finalResponse(all);
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3}) /.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = split === -1 ? '' : text.slice(split + 4);
  const length = Number(headers['content-length']);
  if (Number.isInteger(length)) body = Buffer.from(body, 'latin1').subarray(0, length).toString('utf8');
  return { ...(match ? { status: Number(match[1]) } : {}), headers, body };
}
