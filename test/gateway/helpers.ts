/** Test helpers for the gateway suites: small upstream servers on ephemeral ports, admin calls, metrics. */
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

/** The value of a Prometheus series in /metrics text (`name{labels}`, labels exactly as printed), or undefined. */
export function seriesValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
