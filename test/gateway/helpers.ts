/** Test helpers for the gateway suites: small upstream servers on ephemeral ports, raw sockets. */
import { connect, type Socket } from 'node:net';
import { Pool } from 'undici';
import { listen, type Listening as TestServer } from '../helpers/http';

export { listen, type TestServer };

/** An upstream that answers with what it received, as JSON, tagged with its version. */
export function echoServer(version: string): Promise<TestServer> {
  return listen((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      const body = JSON.stringify({ version, method: req.method, url: req.url, bytes, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': version });
      res.end(body);
    });
  });
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = await listen(() => undefined);
  await server.close();
  return server.port;
}

/** Runs `total` requests with at most `concurrency` in flight. */
export async function runConcurrently(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await one(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export function adminClient(baseUrl: string, token?: string) {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return {
    async put(target: string, body: unknown) {
      const res = await fetch(`${baseUrl}/admin/routes/${target}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
    async get(path: string) {
      const res = await fetch(`${baseUrl}${path}`, { headers: auth });
      return { status: res.status, body: (await res.json()) as any };
    },
    async del(target: string) {
      const res = await fetch(`${baseUrl}/admin/routes/${target}`, { method: 'DELETE', headers: auth });
      return { status: res.status };
    },
  };
}

export { Pool };

/** What a raw socket received until the server closed it (or the wait ended). */
export interface RawReply {
  text: string;
  status?: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (end or reset) before the wait ended. */
  closed: boolean;
  /** The socket error, if it ended with one (e.g. ECONNRESET). */
  error?: string;
  /** Milliseconds from connecting to closing (or to the end of the wait). */
  elapsedMs: number;
}

/** Splits a raw HTTP/1.1 response into status, headers (lower-cased) and body. */
export function parseRawReply(text: string): Pick<RawReply, 'status' | 'headers' | 'body'> {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: match ? Number(match[1]) : undefined, headers, body: split === -1 ? '' : text.slice(split + 4) };
}

/** An open client connection with what it has received so far. */
export interface RawConnection {
  socket: Socket;
  received(): string;
  /** Resolves when the server closes the connection, or after `waitMs` (then `closed` is false). */
  reply(waitMs?: number): Promise<RawReply>;
}

/**
 * Connects to 127.0.0.1:`port` and writes `data` (headers, maybe a start of a body), leaving the
 * connection open, or with `end`, half-closing it (the client says it will send nothing more).
 */
export async function rawConnect(port: number, data?: string | Buffer, end = false): Promise<RawConnection> {
  const socket = connect({ port, host: '127.0.0.1' });
  const startedAt = Date.now();
  const chunks: Buffer[] = [];
  let error: string | undefined;
  let closedAt: number | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedAt = Date.now();
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (data !== undefined) await new Promise<void>((resolve, reject) => socket.write(data, 'latin1', (err) => (err ? reject(err) : resolve())));
  if (end) socket.end();
  const received = () => Buffer.concat(chunks).toString('latin1');
  return {
    socket,
    received,
    async reply(waitMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
      const text = received();
      return { text, ...parseRawReply(text), closed: closedAt !== undefined, error, elapsedMs: (closedAt ?? Date.now()) - startedAt };
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

/** The value of a Prometheus series in /metrics text (`name{labels}`, labels exactly as printed), or undefined. */
export function seriesValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
