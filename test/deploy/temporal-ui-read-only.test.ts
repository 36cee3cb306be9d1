/**
 * What `npm run serve` / `npm start` expose of Temporal (scripts/stack.ts): the dev server started
 * with the stack's own arguments (devServerArgs) listens on 127.0.0.1 only, every socket of it;
 * and the read-only front (scripts/temporal-ui-read-only.ts) in front of its real Web UI answers
 * the UI's settings with write actions off and refuses a real terminate — which the UI behind it
 * would have carried out — while reads, and workflow queries, pass.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Client, Connection } from '@temporalio/client';
import { devServerArgs } from '../../scripts/stack';
import { readOnlyAllows, readOnlySettings, startReadOnlyUi, type ReadOnlyUi } from '../../scripts/temporal-ui-read-only';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { eventually, freePorts } from '../helpers/http';

describe('what the read-only front lets through', () => {
  test.each([
    ['GET', '/namespaces/default/workflows', true],
    ['HEAD', '/', true],
    ['get', '/api/v1/namespaces/default/workflows', true],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/query/status', true],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/terminate', false],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/cancel', false],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/signal/abort', false],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/reset', false],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat', false], // start
    ['POST', '/api/v1/namespaces/default/batch-operations/x', false],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/query/..%2f..%2fterminate', false],
    ['POST', '/api/v1/namespaces/default/workflows/rollout-chat/query/%2e%2e', false],
    ['POST', '/api/v1/namespaces/default/workflows/x/query/status/../../terminate', false],
    ['PUT', '/api/v1/namespaces/default', false],
    ['PATCH', '/api/v1/namespaces/default', false],
    ['DELETE', '/api/v1/namespaces/default/schedules/s', false],
    ['OPTIONS', '/api/v1/settings', false],
  ])('%s %s: %s', (method, path, allowed) => {
    expect(readOnlyAllows(method, path)).toBe(allowed);
  });

  test('settings: DisableWriteActions and every per-action switch on, the rest as given', () => {
    expect(
      readOnlySettings({ Version: '2.54.1', DisableWriteActions: false, WorkflowTerminateDisabled: false, WorkflowFooDisabled: false, BatchActionsDisabled: false, RefreshWorkflowCountsDisabled: false, HideWorkflowQueryErrors: false }),
    ).toEqual({ Version: '2.54.1', DisableWriteActions: true, WorkflowTerminateDisabled: true, WorkflowFooDisabled: true, BatchActionsDisabled: true, RefreshWorkflowCountsDisabled: false, HideWorkflowQueryErrors: false });
    expect(readOnlySettings({})).toEqual({ DisableWriteActions: true });
  });
});

describe('the front, before a UI that records what reaches it', () => {
  let upstream: Server;
  let front: ReadOnlyUi;
  const reached: string[] = [];
  let settingsBody: () => { body: Buffer; headers: Record<string, string> } = () => ({ body: Buffer.from('{"DisableWriteActions":false}'), headers: {} });

  beforeAll(async () => {
    upstream = createServer((req: IncomingMessage, res) => {
      reached.push(`${req.method} ${req.url}`);
      if (req.url === '/api/v1/settings') {
        const { body, headers } = settingsBody();
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(body);
        return;
      }
      req.resume();
      req.on('end', () => res.end(`upstream ${req.method}`));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    front = await startReadOnlyUi({ host: '127.0.0.1', port: 0, upstreamHost: '127.0.0.1', upstreamPort: (upstream.address() as AddressInfo).port });
  });

  afterAll(async () => {
    await front?.close();
    await new Promise((r) => upstream?.close(r));
  });

  test('reads pass; a write is 405 and never reaches the UI', async () => {
    reached.length = 0;
    const read = await fetch(`${front.url}/namespaces/default/workflows?x=1`);
    expect([read.status, await read.text()]).toEqual([200, 'upstream GET']);
    const query = await fetch(`${front.url}/api/v1/namespaces/default/workflows/w/query/status`, { method: 'POST', body: '{}' });
    expect([query.status, await query.text()]).toEqual([200, 'upstream POST']);
    const write = await fetch(`${front.url}/api/v1/namespaces/default/workflows/w/terminate`, { method: 'POST', body: '{"reason":"x"}' });
    expect(write.status).toBe(405);
    expect(write.headers.get('allow')).toBe('GET, HEAD');
    expect(((await write.json()) as { message: string }).message).toContain('TEMPORAL_UI_WRITE_ACTIONS=true turns them on');
    expect(reached).toEqual(['GET /namespaces/default/workflows?x=1', 'POST /api/v1/namespaces/default/workflows/w/query/status']);
  });

  test('settings are rewritten, also when the UI compresses them; unreadable settings are a 502, never passed on', async () => {
    const get = async () => {
      const res = await fetch(`${front.url}/api/v1/settings`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect(await get()).toEqual({ status: 200, body: { DisableWriteActions: true } });
    settingsBody = () => ({ body: gzipSync('{"DisableWriteActions":false,"WorkflowSignalDisabled":false}'), headers: { 'content-encoding': 'gzip' } });
    expect(await get()).toEqual({ status: 200, body: { DisableWriteActions: true, WorkflowSignalDisabled: true } });
    settingsBody = () => ({ body: Buffer.from('not json'), headers: {} });
    expect((await get()).status).toBe(502);
  });

  test('a UI that is down (the dev server restarting) is a 502', async () => {
    const orphan = await startReadOnlyUi({ host: '127.0.0.1', port: 0, upstreamHost: '127.0.0.1', upstreamPort: (await freePorts(1))[0]! });
    try {
      expect((await fetch(`${orphan.url}/`)).status).toBe(502);
    } finally {
      await orphan.close();
    }
  });
});

describe('the dev server as the stack starts it, behind the front', () => {
  let server: ChildProcess;
  let dir: string;
  let front: ReadOnlyUi;
  let client: Client;
  let connection: Connection;
  let ports: { grpc: number; ui: number };

  beforeAll(async () => {
    const [grpc, ui] = await freePorts(2);
    ports = { grpc: grpc!, ui: ui! };
    dir = mkdtempSync(join(tmpdir(), 'mc-ui-read-only-'));
    server = spawn(requireTemporalBinary('temporal'), devServerArgs({ dbFile: join(dir, 'temporal.sqlite'), port: ports.grpc, uiPort: ports.ui, logLevel: 'error', namespace: 'default' }), {
      stdio: 'ignore',
    });
    front = await startReadOnlyUi({ host: '127.0.0.1', port: 0, upstreamHost: '127.0.0.1', upstreamPort: ports.ui });
    connection = await eventually(() => Connection.connect({ address: `127.0.0.1:${ports.grpc}`, connectTimeout: 1_000 }).catch(() => undefined), 60_000, 'the dev server');
    client = new Client({ connection });
    await eventually(async () => ((await fetch(`http://127.0.0.1:${ports.ui}/api/v1/settings`).catch(() => undefined))?.ok ? true : undefined), 30_000, 'its UI');
  }, 90_000);

  afterAll(async () => {
    await front?.close();
    await connection?.close();
    server?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every socket it listens on is on 127.0.0.1', () => {
    const ss = spawnSync('ss', ['-Hltnp'], { encoding: 'utf8' });
    expect(ss.status).toBe(0);
    const mine = ss.stdout.split('\n').filter((line) => line.includes(`pid=${server.pid},`));
    const locals = mine.map((line) => line.trim().split(/\s+/)[3]!);
    expect(locals).toEqual(expect.arrayContaining([`127.0.0.1:${ports.grpc}`, `127.0.0.1:${ports.ui}`]));
    for (const local of locals) expect(local).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test("the front answers the real UI's settings with write actions off", async () => {
    const direct = (await (await fetch(`http://127.0.0.1:${ports.ui}/api/v1/settings`)).json()) as Record<string, unknown>;
    expect(direct.DisableWriteActions).toBe(false); // the dev server cannot turn them off itself
    const fronted = (await (await fetch(`${front.url}/api/v1/settings`)).json()) as Record<string, unknown>;
    expect(fronted).toMatchObject({ DisableWriteActions: true, WorkflowTerminateDisabled: true, WorkflowCancelDisabled: true, WorkflowSignalDisabled: true, WorkflowResetDisabled: true, StartWorkflowDisabled: true });
    expect(fronted.Version).toBe(direct.Version);
    expect((await fetch(`${front.url}/namespaces/default/workflows`)).status).toBe(200);
  });

  test('a terminate through the front is refused and the workflow runs on; the same request to the UI itself terminates it', async () => {
    const workflowId = `read-only-${process.pid}`;
    const handle = await client.workflow.start('nobodyRunsThis', { taskQueue: 'nobody-polls-this', workflowId });
    // The UI's CSRF protection: the cookie it sets, echoed as a header.
    const csrfOf = async (base: string) => {
      const res = await fetch(`${base}/namespaces/default/workflows`);
      const token = /_csrf=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
      expect(token).toBeDefined();
      return { cookie: `_csrf=${token}`, 'x-csrf-token': token!, 'content-type': 'application/json' };
    };
    const terminate = async (base: string) =>
      fetch(`${base}/api/v1/namespaces/default/workflows/${workflowId}/terminate`, { method: 'POST', headers: await csrfOf(base), body: JSON.stringify({ reason: 'from the UI' }) });

    expect((await terminate(front.url)).status).toBe(405);
    expect((await handle.describe()).status.name).toBe('RUNNING');

    const direct = await terminate(`http://127.0.0.1:${ports.ui}`);
    expect(direct.status).toBe(200);
    await eventually(async () => ((await handle.describe()).status.name === 'TERMINATED' ? true : undefined), 10_000, 'the workflow terminated');
  });
});
