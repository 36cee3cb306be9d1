/**
 * `scripts/serve.ts` supervises its children (issue 8, finding 6): the data plane stands alone.
 * On free ports and a temp DATA_DIR, with a steady stream of requests through the gateway to an
 * upstream of ours:
 *
 *   - SIGKILL of the Temporal dev server: no request fails, the stack says it restarts it, the
 *     dev server comes back on the same SQLite file, the API is healthy again, the rollout
 *     started before answers and takes an operator action, and a new rollout starts;
 *   - SIGKILL of the worker, then of the API: traffic unaffected, both come back;
 *   - SIGKILL of the gateway: it comes back with its persisted routes, requests fail only briefly;
 *   - Ctrl-C (SIGINT to the process group): exit 0, quickly, and every process of the tree is gone.
 *
 * And the stack gives up (exit 1, a clear message, nothing left running) when a child cannot
 * start during boot: a binary that does not exist; a dev server that crashes at once every time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import { alive, eventually, freePorts, listen, request, type Listening } from '../helpers/http';
import { serveEnv, type ServePorts } from '../helpers/serve';

interface Serve {
  process: ChildProcess;
  output: string[];
  /** The current pid of each child, from `[serve] started <name> (pid N)`. */
  pids: Map<string, number>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  text(): string;
}

/** `promise`, or an error naming `what` once `ms` have passed: no step of a test hangs past its deadline. */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what()}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The stack's exit, or an error with its output when it takes longer than `ms`. */
const exitWithin = (serve: Serve, ms: number) => within(serve.exit, ms, () => `serve did not exit\n--- output ---\n${serve.text().slice(-4000)}`);

/** `request` (JSON over HTTP) with a 15 s deadline. */
const call: typeof request = (base, method, path, options) => within(request(base, method, path, options), 15_000, () => `${method} ${base}${path}`);

/** A GET with a 5 s deadline. */
const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(5_000) });

const allPids = new Set<number>();
const groups = new Set<number>();
const dataDirs: string[] = [];

function startServe(ports: ServePorts, extraEnv: NodeJS.ProcessEnv = {}): Serve {
  const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-supervise-'));
  dataDirs.push(dataDir);
  // Its own process group, so that a failed test can still kill the whole tree.
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/serve.ts'], { cwd: PROJECT_ROOT, env: serveEnv(ports, dataDir, extraEnv), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const serve: Serve = {
    process: child,
    output: [],
    pids: new Map(),
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    text: () => serve.output.join(''),
  };
  allPids.add(child.pid!);
  groups.add(child.pid!);
  let partial = '';
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    serve.output.push(text);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const started = /^\[serve\] started (\S+) \(pid (\d+)\)$/.exec(line);
      if (!started) continue;
      serve.pids.set(started[1]!, Number(started[2]));
      allPids.add(Number(started[2]));
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return serve;
}

/** Every descendant of `root` (the temporal binary, node children, their esbuild services). */
function descendants(root: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of table) {
      if (ppid === parent && !found.includes(pid)) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

/**
 * One request every ~50 ms through the gateway, sequentially, each with a 2 s timeout; records
 * when each one failed, so a test can tell "none failed" from "failed for N ms".
 */
function traffic(url: string) {
  const results: { at: number; ok: boolean; error?: string }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        const body = await res.text();
        results.push(res.status === 200 && body === 'upstream ok' ? { at, ok: true } : { at, ok: false, error: `${res.status} ${body.slice(0, 200)}` });
      } catch (err) {
        results.push({ at, ok: false, error: String((err as { cause?: unknown }).cause ?? err) });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    results,
    /** Resolves once `n` more requests have succeeded. */
    async successes(n: number, timeoutMs = 20_000) {
      const from = results.length;
      await eventually(async () => (results.slice(from).filter((r) => r.ok).length >= n ? true : undefined), timeoutMs, `${n} successful requests`);
    },
    async stop() {
      running = false;
      await loop;
      const failed = results.filter((r) => !r.ok);
      const first = failed[0];
      const recovered = first ? results.find((r) => r.ok && r.at > failed[failed.length - 1]!.at) : undefined;
      return {
        total: results.length,
        failed,
        /** From the first failed request to the first success after the last failure. */
        outageMs: first && recovered ? recovered.at - first.at : 0,
      };
    },
  };
}

function rolloutSpec(target: string, upstreamUrl: string) {
  return {
    target,
    baseline: { version: 'v1', url: upstreamUrl },
    candidate: { version: 'v2', url: upstreamUrl },
    steps: [{ weight: 10, bake: '10m' }, { weight: 100 }],
    analysis: { interval: '1m' },
  };
}

afterAll(() => {
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const pid of allPids) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe('a running stack restarts the child that died; the others keep going', () => {
  let ports: ServePorts;
  let serve: Serve;
  let upstream: Listening;
  const api = () => `http://127.0.0.1:${ports.api}`;
  const gateway = () => `http://127.0.0.1:${ports.gateway}`;
  const first = `sup-a-${process.pid}`;
  const second = `sup-b-${process.pid}`;
  const route = () => ({ versions: [{ name: 'v1', url: upstream.url, weight: 100 }], salt: 'steady' });
  const measured: Record<string, string> = {};
  let cleanExit = false;

  /** The rollout's status as the worker answers it (not the visibility fallback). */
  const liveStatus = (id: string, timeoutMs: number) =>
    eventually(async () => {
      const res = await call(api(), 'GET', `/v1/rollouts/${id}`);
      return res.status === 200 && !res.body.stale ? res.body : undefined;
    }, timeoutMs, `a live status of ${id}`);

  /** Waits for the restart of `name`: the log line, then a new pid. */
  async function restarted(name: string, oldPid: number, restart: number): Promise<number> {
    const line = `[serve] ${name} exited unexpectedly (signal SIGKILL); restarting in 0.5s (restart ${restart})`;
    return eventually(async () => {
      const pid = serve.pids.get(name);
      return serve.text().includes(line) && pid !== undefined && pid !== oldPid ? pid : undefined;
    }, 15_000, `${name} to be restarted`);
  }

  beforeAll(async () => {
    const [temporal, ui, apiPort, gatewayPort] = await freePorts(4);
    ports = { temporal: temporal!, ui: ui!, api: apiPort!, gateway: gatewayPort! };
    upstream = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('upstream ok');
    });
    serve = startServe(ports);
  });

  afterAll(async () => {
    await upstream?.close();
    if (serve && !cleanExit) console.log(`serve output (it did not stop cleanly):\n${serve.text().slice(-8000)}`);
    console.log(`serve supervision:\n${Object.entries(measured).map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
  });

  it('comes up; a route on the gateway and a rollout', async () => {
    const started = Date.now();
    await eventually(async () => {
      if (serve.process.exitCode !== null) throw new Error(`serve exited:\n${serve.text()}`);
      const res = await get(`${api()}/healthz`);
      return res.ok && serve.text().includes('[serve] ready') ? true : undefined;
    }, 90_000, 'serve to be ready').catch((err: Error) => {
      throw new Error(`${err.message}\n--- output ---\n${serve.text().slice(-4000)}`);
    });
    measured['boot to ready'] = `${Date.now() - started} ms`;
    expect([...serve.pids.keys()].sort()).toEqual(['api', 'gateway', 'temporal', 'worker']);

    const put = await call(gateway(), 'PUT', '/admin/routes/steady', { body: route() });
    expect(put.status).toBe(200);
    const res = await get(`${gateway()}/steady/v1/models`);
    expect(await res.text()).toBe('upstream ok');

    const created = await call(api(), 'POST', '/v1/rollouts', { body: rolloutSpec(first, upstream.url) });
    expect(created.status).toBe(201);
    await liveStatus(`rollout-${first}`, 15_000);
  });

  it('Temporal SIGKILLed: the gateway serves throughout, the dev server comes back on its SQLite file, rollouts go on', async () => {
    const load = traffic(`${gateway()}/steady/v1/models`);
    await load.successes(3);
    const oldPid = serve.pids.get('temporal')!;
    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');

    const newPid = await restarted('temporal', oldPid, 1);
    expect(alive(oldPid)).toBe(false);
    // Same SQLite file, same ports.
    const dbFile = join(dataDirs[0]!, 'temporal.sqlite');
    const args = execFileSync('ps', ['-o', 'args=', '-p', String(newPid)], { encoding: 'utf8' });
    expect(args).toContain(`--db-filename ${dbFile}`);
    expect(args).toContain(`--port ${ports.temporal}`);

    await eventually(async () => ((await get(`${api()}/healthz`)).status === 200 ? true : undefined), 30_000, 'the API to be healthy again');
    measured['Temporal SIGKILL → API /healthz 200'] = `${Date.now() - killedAt} ms`;
    // The API may answer before the stack's own readiness poll (every 300 ms) has logged it.
    await eventually(async () => (serve.text().includes('[serve] Temporal is ready again') ? true : undefined), 30_000, 'the stack to see Temporal again');

    // The rollout started before the crash: its worker answers, and it takes an operator action.
    const before = await liveStatus(`rollout-${first}`, 30_000);
    expect(before).toMatchObject({ id: `rollout-${first}`, phase: 'progressing' });
    measured['Temporal SIGKILL → rollout answers its query'] = `${Date.now() - killedAt} ms`;
    const paused = await call(api(), 'POST', `/v1/rollouts/rollout-${first}/pause`);
    expect(paused.status).toBe(202);
    expect(paused.body.phase).toBe('paused');
    // ...and a new one starts.
    const created = await call(api(), 'POST', '/v1/rollouts', { body: rolloutSpec(second, upstream.url) });
    expect(created.status).toBe(201);
    const list = await eventually(async () => {
      const res = await call(api(), 'GET', '/v1/rollouts');
      const ids = (res.body.rollouts ?? []).map((r: { id: string }) => r.id);
      return ids.includes(`rollout-${first}`) && ids.includes(`rollout-${second}`) ? ids : undefined;
    }, 15_000, 'both rollouts in the list');
    expect(list).toEqual(expect.arrayContaining([`rollout-${first}`, `rollout-${second}`]));

    await load.successes(3);
    const result = await load.stop();
    measured['requests through the gateway during the Temporal kill'] = `${result.total}, failed ${result.failed.length}`;
    expect(result.failed).toEqual([]);
    // The other children were not restarted.
    expect(serve.text()).not.toMatch(/\[serve\] (gateway|worker|api) exited/);
  });

  it('worker SIGKILLed, then the API: traffic unaffected, both come back', async () => {
    const load = traffic(`${gateway()}/steady/v1/models`);
    await load.successes(3);

    const oldWorker = serve.pids.get('worker')!;
    let killedAt = Date.now();
    process.kill(oldWorker, 'SIGKILL');
    await restarted('worker', oldWorker, 1);
    // The new worker answers the rollout's query, then takes an update (resume). The query waits
    // for Temporal to give up on the dead worker's sticky queue (~10 s), so this takes a while.
    expect(await liveStatus(`rollout-${first}`, 60_000)).toMatchObject({ phase: 'paused' });
    const resumed = await call(api(), 'POST', `/v1/rollouts/rollout-${first}/resume`);
    expect(resumed.status).toBe(202);
    expect(resumed.body.phase).toBe('progressing');
    measured['worker SIGKILL → rollout resumed on the new worker'] = `${Date.now() - killedAt} ms`;

    const oldApi = serve.pids.get('api')!;
    killedAt = Date.now();
    process.kill(oldApi, 'SIGKILL');
    await restarted('api', oldApi, 1);
    await eventually(async () => ((await get(`${api()}/healthz`)).status === 200 ? true : undefined), 30_000, 'the restarted API');
    measured['API SIGKILL → /healthz 200'] = `${Date.now() - killedAt} ms`;

    await load.successes(3);
    const result = await load.stop();
    measured['requests through the gateway during the worker and API kills'] = `${result.total}, failed ${result.failed.length}`;
    expect(result.failed).toEqual([]);
  }, 150_000);

  it('gateway SIGKILLed: back with its persisted routes, requests fail only briefly', async () => {
    const load = traffic(`${gateway()}/steady/v1/models`);
    await load.successes(3);
    const oldPid = serve.pids.get('gateway')!;
    process.kill(oldPid, 'SIGKILL');
    await restarted('gateway', oldPid, 1);
    const routes = await eventually(async () => {
      const res = await call(gateway(), 'GET', '/admin/routes');
      return res.status === 200 ? res.body : undefined;
    }, 15_000, 'the restarted gateway');
    expect(routes.routes.steady).toEqual(route());
    await load.successes(5);
    const result = await load.stop();
    measured['gateway SIGKILL → requests failing'] = `${result.failed.length} of ${result.total} over ${result.outageMs} ms`;
    expect(result.outageMs).toBeLessThan(10_000);
    // Only connection failures while it was down: never a wrong answer from a half-started gateway.
    for (const failure of result.failed) expect(failure.error).not.toMatch(/^\d{3} /);
  });

  it('Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops every process of the tree and exits 0', async () => {
    const tree = descendants(serve.process.pid!);
    for (const name of ['temporal', 'gateway', 'worker', 'api']) expect(tree).toContain(serve.pids.get(name));
    const stoppingAt = Date.now();
    process.kill(-serve.process.pid!, 'SIGINT');
    expect(await exitWithin(serve, 30_000)).toEqual({ code: 0, signal: null });
    measured['Ctrl-C → stack exited'] = `${Date.now() - stoppingAt} ms`;
    // The dev server (its own process group) heard it only from the stack, after the others: no
    // worker stuck in its shutdown with its server gone.
    expect(serve.text()).not.toContain('did not stop within');
    const pids = [...new Set([...tree, ...allPids])];
    await eventually(async () => (pids.every((p) => !alive(p)) ? true : undefined), 5_000, `processes ${pids.filter(alive).join(', ')} to exit`);
    const out = serve.text();
    // Temporal was stopped last, and nothing was restarted once the stop began.
    const stopAt = out.indexOf('[serve] stopping (SIGINT)');
    expect(stopAt).toBeGreaterThan(0);
    expect(out.slice(stopAt)).not.toMatch(/\[serve\] (started|\S+ exited unexpectedly)/);
    cleanExit = true;
  });
});

describe('the stack gives up when a child cannot start during boot', () => {
  it('a binary that does not exist: exit 1 at once, with the reason, nothing left running', async () => {
    const [temporal, ui, api, gateway] = await freePorts(4);
    const serve = startServe({ temporal: temporal!, ui: ui!, api: api!, gateway: gateway! }, { TEMPORAL_CLI_PATH: '/nonexistent/temporal' });
    const exit = await exitWithin(serve, 20_000);
    expect(exit.code).toBe(1);
    expect(serve.text()).toContain('[serve] temporal could not start (spawn /nonexistent/temporal ENOENT) before the stack was ready; giving up');
    expect(serve.text()).not.toContain('restarting in');
    const pids = [...serve.pids.values()];
    await eventually(async () => (pids.every((p) => !alive(p)) ? true : undefined), 5_000, 'the gateway to be stopped');
  });

  it('a dev server that exits at once every time (its port is taken): three tries, then exit 1', async () => {
    const [temporal, ui, api, gateway] = await freePorts(4);
    // Only holds the port: drops whatever connects, so that close() does not wait on anything.
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(temporal, '127.0.0.1', resolve));
    try {
      const serve = startServe({ temporal: temporal!, ui: ui!, api: api!, gateway: gateway! });
      const exit = await exitWithin(serve, 20_000);
      const out = serve.text();
      expect(exit.code).toBe(1);
      expect(out).toContain('[serve] temporal exited unexpectedly (code 1); restarting in 0.5s (restart 1)');
      expect(out).toContain('[serve] temporal exited unexpectedly (code 1); restarting in 1s (restart 2)');
      expect(out).toContain('[serve] temporal exited unexpectedly (code 1) 3 times before the stack was ready; giving up');
      expect(out).toContain('address already in use');
      const pids = [...serve.pids.values()];
      await eventually(async () => (pids.every((p) => !alive(p)) ? true : undefined), 5_000, 'the gateway to be stopped');
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});
