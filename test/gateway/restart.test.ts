/**
 * The gateway as a real process (`node --import tsx src/gateway/main.ts`, one process, so a
 * SIGKILL really kills it): routes survive a SIGKILL and restart; SIGTERM shuts down cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { adminClient, echoServer, type TestServer } from './helpers';

const ROOT = path.resolve(__dirname, '../..');
const TOKEN = 'restart-token';

interface Running {
  child: ChildProcess;
  url: string;
  startupMs: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

function startProcess(dataDir: string): Promise<Running> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, GATEWAY_PORT: '0', GATEWAY_HOST: '127.0.0.1', DATA_DIR: dataDir, GATEWAY_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start within 30 s\n${out}\n${err}`)), 30_000);
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"gateway listening"')) continue;
        clearTimeout(timer);
        resolve({ child, url: (JSON.parse(line) as { url: string }).url, startupMs: Date.now() - started, exited });
        return;
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}) before listening\n${out}\n${err}`));
    });
  });
}

let dataDir: string;
let upstream: TestServer;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-restart-'));
  upstream = await echoServer('v1');
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await upstream?.close();
  await rm(dataDir, { recursive: true, force: true });
});

it('keeps its routes across a SIGKILL and restart', async () => {
  const first = await startProcess(dataDir);
  console.log(`gateway process startup (node --import tsx): ${first.startupMs} ms`);
  const route = {
    versions: [
      { name: 'v1', url: upstream.url, weight: 75 },
      { name: 'v2', url: upstream.url, weight: 25 },
    ],
    salt: 'rollout-1',
  };
  const firstAdmin = adminClient(first.url, TOKEN);
  const put = await firstAdmin.put('chat', route);
  expect(put.status).toBe(200);
  const countingSinceBefore = (await firstAdmin.get('/admin/metrics/chat')).body.versions.v1.countingSince;

  first.child.kill('SIGKILL');
  expect((await first.exited).signal).toBe('SIGKILL');

  const second = await startProcess(dataDir);
  const admin = adminClient(second.url, TOKEN);
  expect((await admin.get('/admin/routes')).body).toEqual({ routes: { chat: route } });
  const res = await fetch(`${second.url}/chat/v1/models`, { headers: { 'x-canary-key': 'u1' } });
  expect(res.status).toBe(200);
  expect(['v1', 'v2']).toContain(res.headers.get('x-canary-version'));
  // Every version of the reloaded route has its metrics (from zero: counters are per process).
  const metrics = (await admin.get('/admin/metrics/chat')).body;
  expect(Object.keys(metrics.versions).sort()).toEqual(['v1', 'v2']);
  expect(metrics.versions.v1.requests + metrics.versions.v2.requests).toBe(1);
  // ...and says so, so a reader can tell a reset from counters that climbed back up.
  expect(metrics.versions.v1.countingSince).not.toEqual(countingSinceBefore);
  expect((await readdir(dataDir)).filter((f) => f.includes('.tmp'))).toEqual([]);

  second.child.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
});
