/**
 * `npm start` end to end (`node --import tsx scripts/start.ts`, as the npm script runs it after the
 * install steps): on free ports and a temp DATA_DIR, with a shortened show (DEMO_SCALE), the demo
 * rollout v1 → v2 promotes, v2 → v3 rolls back by itself on its errors and, on streamed traffic,
 * v2 → v4 rolls back by itself on its time to first token, as the REST API tells; the gateway
 * ends on v2; SIGINT stops every child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import type { RolloutStatus, RolloutSummary } from '../../src/workflows/status';
import { alive, eventually, freePorts, request } from '../helpers/http';

const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-start-'));
const pids = new Map<string, number>();
let child: ChildProcess | undefined;

afterAll(() => {
  for (const pid of [child?.pid, ...pids.values()]) {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

it('runs the demo show: v1 → v2 promoted, v2 → v3 and v2 → v4 rolled back; SIGINT stops everything', async () => {
  const [temporal, ui, apiPort, gatewayPort] = await freePorts(4);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    API_PORT: String(apiPort),
    GATEWAY_PORT: String(gatewayPort),
    DEMO_MODEL_PORTS: '0,0,0,0',
    DEMO_SCALE: '0.3',
    DEMO_RATE: '40',
  };
  for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_UI_URL', 'API_TOKEN', 'GATEWAY_URL', 'GATEWAY_ADMIN_TOKEN', 'TASK_QUEUE', 'TEMPORAL_NAMESPACE', 'API_HOST', 'LOG_LEVEL']) delete env[name];
  const started = Date.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const output: string[] = [];
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output.push(text);
    for (const [, name, pid] of text.matchAll(/\[start\] started (\S+) \(pid (\d+)\)/g)) pids.set(name!, Number(pid));
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);

  const api = `http://127.0.0.1:${apiPort}`;
  // The three demo rollouts of `chat` have ended (the list folds each run into one line).
  const runs = await eventually(
    async () => {
      if (proc.exitCode !== null) throw new Error(`npm start exited:\n${output.join('')}`);
      const res = await request<{ rollouts: RolloutSummary[] }>(api, 'GET', '/v1/rollouts?target=chat');
      const rollouts = res.body.rollouts ?? [];
      const ended = rollouts.filter((r) => ['promoted', 'rolled_back', 'aborted', 'failed'].includes(r.phase));
      return ended.length >= 3 && output.join('').includes('the show is over') ? rollouts : undefined;
    },
    180_000,
    'the three demo rollouts to end',
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- output ---\n${output.join('').slice(-6000)}`);
  });
  const showMs = Date.now() - started;

  const statuses = await Promise.all(
    runs.map(async (r) => (await request<RolloutStatus>(api, 'GET', `/v1/rollouts/${r.id}?runId=${r.runId}`)).body),
  );
  const first = statuses.find((s) => s.candidate.version === 'v2');
  const second = statuses.find((s) => s.candidate.version === 'v3');
  const third = statuses.find((s) => s.candidate.version === 'v4');
  expect(first).toMatchObject({ phase: 'promoted', baseline: { version: 'v1' }, weights: { baseline: 0, candidate: 100 } });
  expect(second).toMatchObject({ phase: 'rolled_back', baseline: { version: 'v2' }, weights: { baseline: 100, candidate: 0 } });
  expect(second!.outcome!.reason).toMatch(/the sequential judge failed the candidate: error rate: candidate \d+\/\d+ \([\d.]+%\) vs baseline 0\/\d+/);
  // v4 fails on its time to first token alone: no errors, and its end-to-end latency is v2's.
  expect(third).toMatchObject({ phase: 'rolled_back', baseline: { version: 'v2' }, weights: { baseline: 100, candidate: 0 } });
  expect(third!.spec.analysis.metrics).toEqual({ errors: {}, latency: {}, ttft: {} });
  expect(third!.outcome!.reason).toMatch(/^the sequential judge failed the candidate: time to first token: requests slower than \d+ ms, candidate \d+\/\d+ /);
  expect(third!.outcome!.reason).not.toMatch(/error rate:|latency:/);
  const failed = third!.decisions.at(-1)!;
  expect(failed.verdict).toBe('fail');
  expect(failed.metrics.candidate.errors).toBe(0);
  expect(failed.metrics.candidate.timeToFirstTokenP95Ms).toBeGreaterThan(failed.metrics.baseline.timeToFirstTokenP95Ms!);

  // The gateway serves v2 alone: the route the promotion left (v1 kept at 0%), which the rollbacks
  // of v3 and v4 restored exactly. The show printed every check and the three history links.
  const routes = await request(`http://127.0.0.1:${gatewayPort}`, 'GET', '/admin/routes');
  expect(routes.body.routes.chat).toEqual({
    salt: 'rollout-chat',
    versions: [expect.objectContaining({ name: 'v1', weight: 0 }), expect.objectContaining({ name: 'v2', weight: 100 })],
  });
  const out = output.join('');
  expect(out).toMatch(/check \d+ · step 1 @10% · PASS/);
  expect(out).toMatch(/check \d+ · step 1 @20% · FAIL/);
  expect(out).toContain('rollout 3/3: chat v2 → v4 (2× time to first token: expect an automatic rollback)');
  expect(out).toMatch(/check \d+ · step 1 @20% · FAIL · v4 \d+ req, 0\.0% err, p95 [\d.]+ ms, TTFT p95 [\d.]+ ms \| v2 .* — time to first token: /);
  expect(out).toMatch(/rollout 3 {4}v2 → v4 rolled_back: the sequential judge failed the candidate: time to first token: /);
  for (const s of statuses) expect(out).toContain(s.links!.temporalUi);
  expect(out).not.toMatch(/\[worker\] \S+ \[INFO\]/); // the worker's INFO logs are filtered out

  proc.kill('SIGINT');
  expect(await exit).toEqual({ code: 0, signal: null });
  expect([...pids.keys()].sort()).toEqual(['api', 'gateway', 'temporal', 'worker']);
  const all = [...pids.values()];
  await eventually(async () => (all.every((p) => !alive(p)) ? true : undefined), 5_000, `children ${all.join(', ')} to exit`);
  console.log(`npm start: the three demo rollouts ended ${(showMs / 1000).toFixed(1)} s after launch (DEMO_SCALE=0.3)`);
}, 240_000);
