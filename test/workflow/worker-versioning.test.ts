/**
 * Worker Versioning on the real Temporal dev server: a rollout is pinned to the build that started
 * it. Build A polls; until it is made current (with the `temporal worker deployment
 * set-current-version` command the README gives), a rollout started waits, then runs on A.
 * Rollout 1 starts on A and is paused mid-bake; build B starts and is made current. A new rollout
 * then runs on B, while rollout 1 — resumed after the switch — finishes on A: every one of its
 * workflow tasks completed on build A, pinned (the history's deployment version), every one of its
 * activities ran on A's worker (A's router and metric source), and A's version reports `draining`
 * while rollouts are open on it and `drained` once they are done. A pinned rollout that continues
 * as new after the switch stays on A too.
 *
 * Each worker is `createWorker` from src/worker.ts with the settings `loadConfig` reads from
 * WORKER_DEPLOYMENT_NAME / WORKER_BUILD_ID, and recording adapters of its own.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { createWorker } from '../../src/worker';
import { ROLLOUT_WORKFLOW, pauseUpdate, resumeUpdate, rolloutWorkflowId, statusQuery } from '../../src/workflows/messages';
import type { RolloutSpec } from '../../src/spec';
import type { rollout } from '../../src/workflows/rollout';
import type { RolloutStatus } from '../../src/workflows/status';
import { CanaryWeight, RolloutPhase, RolloutTarget } from '../../src/workflows/search-attributes';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics, fixedAdapters, testLogLevel, workflowBundle } from '../helpers/dev-server';
import { eventually } from '../helpers/http';
import { makeSpec } from '../helpers/specs';
import { uniqueTaskQueue } from '../helpers/temporal';

const run = promisify(execFile);
const { VERSIONING_BEHAVIOR_PINNED } = temporal.api.enums.v1.VersioningBehavior;

let env: TestWorkflowEnvironment;
const workers: { worker: Worker; running: Promise<void> }[] = [];

/** One Worker Deployment (its name and task queue) per test. */
interface Deployment {
  name: string;
  taskQueue: string;
}
let deployments = 0;
function newDeployment(): Deployment {
  deployments += 1;
  return { name: `model-canary-${process.pid}-${Date.now()}-${deployments}`, taskQueue: uniqueTaskQueue('versioning') };
}

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger(testLogLevel()) });
  } catch {
    // already installed in this process
  }
  // The dev server of `startDevServer()`, with the drainage status refreshed every second instead
  // of every 3 minutes (and counted 1 s after the last pinned rollout closed, instead of 3 minutes).
  env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: requireTemporalBinary('temporal') },
      ip: '127.0.0.1',
      searchAttributes: [RolloutTarget, RolloutPhase, CanaryWeight],
      extraArgs: [
        '--dynamic-config-value', 'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
        '--dynamic-config-value', 'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
      ],
    },
  });
}, 60_000);

afterAll(async () => {
  for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  await Promise.all(workers.map((w) => w.running.catch(() => undefined)));
  await env?.teardown();
}, 30_000);

interface BuildWorker {
  buildId: string;
  identity: string;
  router: RecordingRouter;
  metrics: ScriptedMetrics;
}

/** A worker of `buildId`, configured as the environment would configure it. */
async function startBuild(deployment: Deployment, buildId: string): Promise<BuildWorker> {
  const config = loadConfig({ TEMPORAL_NAMESPACE: env.namespace ?? 'default', TASK_QUEUE: deployment.taskQueue, WORKER_DEPLOYMENT_NAME: deployment.name, WORKER_BUILD_ID: buildId });
  expect(config.workerVersioning).toEqual({ deploymentName: deployment.name, buildId, defaultBehavior: 'PINNED' });
  const build: BuildWorker = { buildId, identity: `worker-${buildId}`, router: new RecordingRouter(), metrics: new ScriptedMetrics() };
  const worker = await createWorker(env.nativeConnection, config, fixedAdapters({ router: build.router, metrics: build.metrics, notifier: new RecordingNotifier() }), {
    workflowsPath: undefined,
    workflowBundle: await workflowBundle(),
    identity: build.identity,
  });
  const running = worker.run();
  running.catch(() => undefined);
  workers.push({ worker, running });
  return build;
}

/** The README's command. The version exists once its worker has polled: retried until then. */
async function setCurrentVersion(deployment: Deployment, buildId: string): Promise<void> {
  const args = ['worker', 'deployment', 'set-current-version', '--address', env.address, '--namespace', env.namespace ?? 'default', '--deployment-name', deployment.name, '--build-id', buildId, '--yes'];
  await eventually(async () => {
    await run(requireTemporalBinary('temporal'), args, { timeout: 10_000 });
    return true;
  }, 20_000, `set-current-version ${buildId}`);
}

/** The drainage status `temporal worker deployment describe-version` reports, e.g. `draining`. */
async function drainageStatus(deployment: Deployment, buildId: string): Promise<string | undefined> {
  const args = ['worker', 'deployment', 'describe-version', '--address', env.address, '--namespace', env.namespace ?? 'default', '--deployment-name', deployment.name, '--build-id', buildId, '--output', 'json'];
  const { stdout } = await run(requireTemporalBinary('temporal'), args, { timeout: 10_000 });
  const info = JSON.parse(stdout) as { drainageInfo?: { drainageStatus?: string } };
  return info.drainageInfo?.drainageStatus;
}

async function waitFor(handle: WorkflowHandle<typeof rollout>, what: string, ok: (s: RolloutStatus) => boolean, timeoutMs = 20_000): Promise<RolloutStatus> {
  return eventually(async () => {
    const s = await handle.query(statusQuery);
    return ok(s) ? s : undefined;
  }, timeoutMs, what);
}

function startRollout(deployment: Deployment, spec: RolloutSpec, historyLimit?: number): Promise<WorkflowHandleWithFirstExecutionRunId<typeof rollout>> {
  return env.client.workflow.start<typeof rollout>(ROLLOUT_WORKFLOW, {
    args: [{ spec, ...(historyLimit ? { historyLimit } : {}) }],
    workflowId: rolloutWorkflowId(spec.target),
    taskQueue: deployment.taskQueue,
    typedSearchAttributes: [
      { key: RolloutTarget, value: spec.target },
      { key: RolloutPhase, value: 'progressing' },
      { key: CanaryWeight, value: 0 },
    ],
  });
}

/** The version and behavior the server has for a rollout (DescribeWorkflowExecution's versioningInfo). */
async function pinnedTo(handle: WorkflowHandle<typeof rollout>): Promise<{ buildId?: string | null; behavior?: number | null }> {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return { buildId: info?.deploymentVersion?.buildId, behavior: info?.behavior };
}

/** Each workflow task completion of a run's history: its event id, build ID and behavior; and who ran its activities. */
async function tasksOf(handle: WorkflowHandle) {
  const events = (await handle.fetchHistory()).events ?? [];
  const workflowTasks = events.flatMap((e) => {
    const a = e.workflowTaskCompletedEventAttributes;
    return a ? [{ eventId: Number(e.eventId), deployment: a.deploymentVersion?.deploymentName, buildId: a.deploymentVersion?.buildId, behavior: a.versioningBehavior, identity: a.identity }] : [];
  });
  const activityWorkers = events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.identity] : []));
  const started = events[0]?.eventTime;
  const startedAt = Number(started?.seconds ?? 0) * 1000 + Math.floor((started?.nanos ?? 0) / 1e6);
  const continuedAs = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  return { workflowTasks, activityWorkers, length: events.length, startedAt, continuedAs };
}

// Short steps in real time: 10% baked for 6 s (checks every second), then 100%.
const spec = () =>
  makeSpec({
    steps: [{ weight: 10, bake: '6s' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 50, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } },
  });

test('a rollout stays pinned to the build that started it; new rollouts start on the current build', async () => {
  // Build A polls, but is not current yet: a rollout started now waits (no workflow task taken).
  const deployment = newDeployment();
  const a = await startBuild(deployment, 'build-a');
  const spec0 = spec();
  const early = await startRollout(deployment, spec0);
  await new Promise((r) => setTimeout(r, 3_000));
  expect((await tasksOf(early)).length).toBe(2); // WorkflowExecutionStarted, WorkflowTaskScheduled
  expect(a.router.routes).toEqual([]);

  // Build A is made current: the waiting rollout runs on it, and so does rollout 1, paused mid-bake.
  await setCurrentVersion(deployment, a.buildId);
  const spec1 = spec();
  const first = await startRollout(deployment, spec1);
  await waitFor(first, 'rollout 1 baking at 10%', (s) => s.phase === 'progressing' && s.weights.candidate === 10 && s.decisions.length >= 1);
  expect((await first.executeUpdate(pauseUpdate)).phase).toBe('paused');
  expect(await pinnedTo(first)).toEqual({ buildId: a.buildId, behavior: VERSIONING_BEHAVIOR_PINNED });

  // Build B starts beside A and becomes current.
  const b = await startBuild(deployment, 'build-b');
  await setCurrentVersion(deployment, b.buildId);
  const switchedAt = (await tasksOf(first)).length;
  expect(await eventually(async () => ((await drainageStatus(deployment, a.buildId)) === 'draining' ? 'draining' : undefined), 15_000, 'build A draining')).toBe('draining');

  // A new rollout runs on B, to its end.
  const spec2 = spec();
  const second = await startRollout(deployment, spec2);
  const result2 = await second.result();
  expect(result2.phase).toBe('promoted');
  expect(await pinnedTo(second)).toEqual({ buildId: b.buildId, behavior: VERSIONING_BEHAVIOR_PINNED });

  // The paused rollout is still A's: resumed, it finishes on A.
  expect(await pinnedTo(first)).toEqual({ buildId: a.buildId, behavior: VERSIONING_BEHAVIOR_PINNED });
  expect((await first.query(statusQuery)).phase).toBe('paused');
  expect((await first.executeUpdate(resumeUpdate)).phase).toBe('progressing');
  const result1 = await first.result();
  expect(result1.phase).toBe('promoted');
  expect(result1.weights).toEqual({ baseline: 0, candidate: 100 });
  expect((await early.result()).phase).toBe('promoted');
  expect(await pinnedTo(early)).toEqual({ buildId: a.buildId, behavior: VERSIONING_BEHAVIOR_PINNED });

  // Every workflow task of rollout 1 — those after B became current included — completed on build
  // A, pinned; rollout 2's on B. Each build's activities ran on its own worker only.
  const h1 = await tasksOf(first);
  const h2 = await tasksOf(second);
  expect(h1.workflowTasks.filter((t) => t.eventId > switchedAt).length).toBeGreaterThan(0);
  for (const t of h1.workflowTasks) expect(t).toMatchObject({ deployment: deployment.name, buildId: a.buildId, behavior: VERSIONING_BEHAVIOR_PINNED, identity: a.identity });
  for (const t of h2.workflowTasks) expect(t).toMatchObject({ deployment: deployment.name, buildId: b.buildId, behavior: VERSIONING_BEHAVIOR_PINNED, identity: b.identity });
  expect(h1.activityWorkers.length).toBeGreaterThan(0);
  expect(new Set(h1.activityWorkers)).toEqual(new Set([a.identity]));
  expect(new Set(h2.activityWorkers)).toEqual(new Set([b.identity]));
  expect(new Set(a.router.routes.map((r) => r.target))).toEqual(new Set([spec0.target, spec1.target]));
  expect(new Set(b.router.routes.map((r) => r.target))).toEqual(new Set([spec2.target]));
  expect(a.router.routes.filter((r) => r.target === spec1.target).map((r) => r.versions.map((v) => v.weight).join('/'))).toEqual(['100/0', '90/10', '0/100']);

  // With no open rollout left on it, build A is drained: its workers may stop.
  expect(await eventually(async () => ((await drainageStatus(deployment, a.buildId)) === 'drained' ? 'drained' : undefined), 15_000, 'build A drained')).toBe('drained');
}, 90_000);

test('a pinned rollout that continues as new stays on its build', async () => {
  const deployment = newDeployment();
  const a = await startBuild(deployment, 'build-a');
  await setCurrentVersion(deployment, a.buildId);
  // A history limit of 40 events: the rollout continues as new every few checks.
  const handle = await startRollout(deployment, spec(), 40);
  await waitFor(handle, 'rollout baking at 10%', (s) => s.phase === 'progressing' && s.weights.candidate === 10 && s.decisions.length >= 1);
  await handle.executeUpdate(pauseUpdate);
  const b = await startBuild(deployment, 'build-b');
  await setCurrentVersion(deployment, b.buildId);
  const switchedAt = Date.now();
  await handle.executeUpdate(resumeUpdate);
  const result = await handle.result();
  expect(result.phase).toBe('promoted');

  // Every run of the chain, those started after B became current included, ran on A.
  const runs: Awaited<ReturnType<typeof tasksOf>>[] = [];
  for (let runId: string | undefined = handle.firstExecutionRunId; runId; runId = runs.at(-1)!.continuedAs) {
    runs.push(await tasksOf(env.client.workflow.getHandle(handle.workflowId, runId)));
  }
  expect(runs.filter((r) => r.startedAt > switchedAt).length).toBeGreaterThan(0);
  for (const run of runs) {
    for (const t of run.workflowTasks) expect(t).toMatchObject({ deployment: deployment.name, buildId: a.buildId, behavior: VERSIONING_BEHAVIOR_PINNED, identity: a.identity });
    expect(new Set(run.activityWorkers)).toEqual(new Set(run.activityWorkers.length ? [a.identity] : []));
  }
  expect(b.router.routes).toEqual([]);
}, 60_000);
