/**
 * A read-only front for the Temporal dev server's Web UI, used by the stack (scripts/stack.ts)
 * unless TEMPORAL_UI_WRITE_ACTIONS=true.
 *
 * Why a front: `temporal server start-dev` (CLI 1.9.1, UI server 2.54.1) builds its UI server's
 * configuration in code (internal/devserver/server.go, buildUIServer) and sets none of the UI
 * server's `disableWriteActions` / `workflowTerminateDisabled`… settings, and has no flag or file
 * for them. So the dev server's UI listens on a loopback port of its own and this front, on
 * TEMPORAL_UI_PORT, does what the UI server does with `disableWriteActions: true`
 * (ui-server route.DisableWriteMiddleware): it passes GET and HEAD, and a POST only for a
 * workflow query (a read), and answers every other request 405 without forwarding it; and it
 * answers the UI's `/api/v1/settings` with `DisableWriteActions: true` (and the per-action
 * switches), so the UI hides its terminate, cancel, signal, reset and start buttons.
 */
import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';

/** How to turn write actions on, for messages. */
export const WRITE_ACTIONS_HINT = 'TEMPORAL_UI_WRITE_ACTIONS=true turns them on';

/** A workflow query (`POST /api/v1/namespaces/{ns}/workflows/{id}/query/{name}`): a read, as the UI server allows it. */
const QUERY_PATH = /^\/api\/v1\/namespaces\/[^/]+\/workflows\/[^/]+\/query\/[^/]+$/;

/** Whether the read-only UI lets a request through (`path` without its query string). */
export function readOnlyAllows(method: string, path: string): boolean {
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD') return true;
  if (m !== 'POST' || !QUERY_PATH.test(path)) return false;
  // No dot segments: the path must name a query, not climb out of one ("/query/..%2f..").
  return path.split('/').every((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return false;
    }
    return decoded !== '.' && decoded !== '..' && !decoded.includes('/') && !decoded.includes('\\');
  });
}

/** UI server settings that turn write actions off (those a given UI version answers are set; DisableWriteActions always). */
const WRITE_SWITCHES = [
  'WorkflowTerminateDisabled',
  'WorkflowCancelDisabled',
  'WorkflowSignalDisabled',
  'WorkflowUpdateDisabled',
  'WorkflowResetDisabled',
  'WorkflowPauseDisabled',
  'BatchActionsDisabled',
  'StartWorkflowDisabled',
  'ActivityCommandsDisabled',
];

/** The UI server's `/api/v1/settings` answer, with write actions off. */
export function readOnlySettings(settings: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...settings, DisableWriteActions: true };
  // A newer UI's per-workflow-action switch (`Workflow…Disabled`) is a write action too.
  for (const key of Object.keys(settings)) if (WRITE_SWITCHES.includes(key) || /^Workflow[A-Z]\w*Disabled$/.test(key)) out[key] = true;
  return out;
}

export interface ReadOnlyUi {
  url: string;
  close(): Promise<void>;
}

/**
 * Listens on host:port and fronts the UI at upstream (`127.0.0.1:<port>`). Resolves once
 * listening; rejects when it cannot listen (a busy port).
 */
export function startReadOnlyUi(options: { host: string; port: number; upstreamHost: string; upstreamPort: number }): Promise<ReadOnlyUi> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server: Server = createServer((req, res) => void handle(req, res));

  function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ message }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!readOnlyAllows(req.method ?? 'GET', path)) {
      req.resume();
      refuse(res, 405, `Method Not Allowed: this Temporal UI is read-only (write actions are off; ${WRITE_ACTIONS_HINT})`, { allow: 'GET, HEAD' });
      return;
    }
    const settings = (req.method ?? 'GET').toUpperCase() === 'GET' && path === '/api/v1/settings';
    const headers = { ...req.headers };
    if (settings) headers['accept-encoding'] = 'identity';
    const upstream = httpRequest(
      { host: options.upstreamHost, port: options.upstreamPort, method: req.method, path: req.url, headers, agent },
      (up) => {
        if (!settings || (up.statusCode ?? 500) !== 200) {
          res.writeHead(up.statusCode ?? 502, up.statusMessage, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('error', () => refuse(res, 502, 'the Temporal UI broke off its answer'));
        up.on('end', () => {
          try {
            const raw = Buffer.concat(chunks);
            const encoding = String(up.headers['content-encoding'] ?? '').toLowerCase();
            const body = encoding === 'gzip' ? gunzipSync(raw) : encoding === 'deflate' ? inflateSync(raw) : encoding === 'br' ? brotliDecompressSync(raw) : raw;
            const json = JSON.stringify(readOnlySettings(JSON.parse(body.toString('utf8')) as Record<string, unknown>));
            const { 'content-encoding': _e, 'content-length': _l, 'transfer-encoding': _t, etag: _etag, ...rest } = up.headers;
            res.writeHead(200, { ...rest, 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
            res.end(json);
          } catch {
            // Never pass on settings that could leave write actions on.
            refuse(res, 502, 'the Temporal UI answered settings that could not be read; write actions stay off');
          }
        });
      },
    );
    upstream.on('error', () => refuse(res, 502, 'the Temporal UI is not answering (is the dev server restarting?)'));
    req.on('aborted', () => upstream.destroy());
    req.pipe(upstream);
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.removeListener('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${options.host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
            agent.destroy();
          }),
      });
    });
  });
}
