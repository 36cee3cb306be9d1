/**
 * `scripts/serve.ts` end to end: dev server + worker + API (+ gateway) come up on free ports
 * and a temp DATA_DIR, serve a rollout, stop cleanly on SIGINT, restart on the same SQLite file
 * with the rollout still there. (A child that dies is restarted: test/api/serve-supervision.test.ts.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import { alive, eventually, freePorts, request } from '../helpers/http';
import { serveEnv, type ServePorts } from '../helpers/serve';

interface Serve {
  process: ChildProcess;
  output: string[];
  pids: Map<string, number>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const allPids = new Set<number>();
const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-serve-'));
let ports: ServePorts;

function startServe(): Serve {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/serve.ts'], { cwd: PROJECT_ROOT, env: serveEnv(ports, dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  const serve: Serve = {
    process: child,
    output: [],
    pids: new Map(),
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  allPids.add(child.pid!);
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    serve.output.push(text);
    for (const [, name, pid] of text.matchAll(/\[serve\] started (\S+) \(pid (\d+)\)/g)) {
      serve.pids.set(name!, Number(pid));
      allPids.add(Number(pid));
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return serve;
}

const api = () => `http://127.0.0.1:${ports.api}`;

async function waitUntilReady(serve: Serve): Promise<void> {
  await eventually(
    async () => {
      if (serve.process.exitCode !== null) throw new Error(`serve exited:\n${serve.output.join('')}`);
      const res = await fetch(`${api()}/healthz`);
      return res.ok && serve.output.join('').includes('[serve] ready') ? true : undefined;
    },
    90_000,
    'serve to be ready',
  );
}

async function expectAllGone(serve: Serve): Promise<void> {
  const pids = [...serve.pids.values()];
  await eventually(async () => (pids.every((p) => !alive(p)) ? true : undefined), 5_000, `children ${pids.join(', ')} to exit`);
}

beforeAll(async () => {
  const [temporal, ui, apiPort, gateway] = await freePorts(4);
  ports = { temporal: temporal!, ui: ui!, api: apiPort!, gateway: gateway! };
});

afterAll(() => {
  for (const pid of allPids) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

const target = `serve-${process.pid}`;

it('comes up, serves a rollout and stops every child on SIGINT', async () => {
  const serve = startServe();
  await waitUntilReady(serve);
  const out = serve.output.join('');
  expect(out).toContain(`API          http://127.0.0.1:${ports.api}`);
  expect(out).toContain(`Temporal UI  http://127.0.0.1:${ports.ui}/namespaces/default/workflows`);
  expect([...serve.pids.keys()]).toEqual(expect.arrayContaining(['temporal', 'worker', 'api']));

  const started = await request(api(), 'POST', '/v1/rollouts', {
    body: {
      target,
      baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
      candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
      steps: [{ weight: 10, bake: '10m' }, { weight: 100 }],
      analysis: { interval: '1m' },
    },
  });
  expect(started.status).toBe(201);
  expect(started.body.links.temporalUi).toContain(`http://127.0.0.1:${ports.ui}/namespaces/default/workflows/rollout-${target}/`);
  await eventually(async () => {
    const res = await request(api(), 'GET', '/v1/rollouts');
    return res.body.rollouts?.some((r: { id: string }) => r.id === `rollout-${target}`) ? true : undefined;
  }, 15_000, 'the rollout in the list');

  serve.process.kill('SIGINT');
  expect(await serve.exit).toEqual({ code: 0, signal: null });
  await expectAllGone(serve);
}, 150_000);

it('restarts on the same DATA_DIR with the rollout still there; SIGTERM stops every child', async () => {
  const serve = startServe();
  await waitUntilReady(serve);
  // The rollout survived the restart (SQLite file) and its workflow answers again.
  const status = await eventually(async () => {
    const res = await request(api(), 'GET', `/v1/rollouts/rollout-${target}`);
    return res.status === 200 && !res.body.stale ? res.body : undefined;
  }, 30_000, 'the rollout status from the restarted worker');
  expect(status).toMatchObject({ id: `rollout-${target}`, phase: 'progressing' });

  serve.process.kill('SIGTERM');
  expect(await serve.exit).toEqual({ code: 0, signal: null });
  await expectAllGone(serve);
}, 150_000);
