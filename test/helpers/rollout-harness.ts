/**
 * Workflow tests' shared setup: one time-skipping server and one workflow bundle per test file,
 * and a rollout started on a fresh task queue with a worker serving the given test adapters.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { testLogLevel } from './dev-server';
import { createActivities, type ActivityDeps } from '../../src/activities';
import { fixedAdapters, type TestAdapters } from './adapters';
import type { RolloutSpec } from '../../src/spec';
import { rolloutWorkflowId } from '../../src/workflows/messages';
import type { rollout } from '../../src/workflows/rollout';
import { bundleRolloutWorkflows, createTimeSkippingEnv, uniqueTaskQueue } from './temporal';

export interface TimeSkippingServer {
  env(): TestWorkflowEnvironment;
  bundle(): WorkflowBundleWithSourceMap;
}

/** Registers beforeAll/afterAll hooks that start and tear down the server for this file. */
export function useTimeSkippingServer(): TimeSkippingServer {
  Runtime.install({ logger: new DefaultLogger(testLogLevel()) });
  let env: TestWorkflowEnvironment | undefined;
  let bundle: WorkflowBundleWithSourceMap | undefined;
  beforeAll(async () => {
    [env, bundle] = await Promise.all([createTimeSkippingEnv(), bundleRolloutWorkflows()]);
  });
  afterAll(async () => {
    await env?.teardown();
  });
  return {
    env: () => env ?? fail('time-skipping server not started'),
    bundle: () => bundle ?? fail('workflow bundle not built'),
  };
}

/** Starts a rollout of `spec` and runs `body` while a worker with `deps` serves it. */
export async function runRollout<T>(
  server: TimeSkippingServer,
  spec: RolloutSpec,
  deps: TestAdapters | ActivityDeps,
  body: (handle: WorkflowHandle<typeof rollout>) => Promise<T>,
  options: { historyLimit?: number } = {},
): Promise<T> {
  const env = server.env();
  const taskQueue = uniqueTaskQueue('rollout');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: server.bundle(),
    activities: createActivities('router' in deps ? fixedAdapters(deps) : deps),
  });
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof rollout>('rollout', {
      taskQueue,
      workflowId: rolloutWorkflowId(spec.target),
      args: [{ spec, historyLimit: options.historyLimit }],
    });
    try {
      return await body(handle);
    } finally {
      // A test that failed half-way must not leave a rollout that holds the shared test server's clock.
      await handle.terminate('test finished').catch(() => undefined);
    }
  });
}

function fail(message: string): never {
  throw new Error(message);
}
