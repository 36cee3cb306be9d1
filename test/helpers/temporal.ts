/** Temporal test servers from the project's own binaries (never downloaded at test time). */
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { CanaryWeight, RolloutPhase, RolloutTarget } from '../../src/workflows/search-attributes';
import { WORKFLOWS_PATH } from '../../src/worker';

/** The time-skipping server, with the rollout's search attributes registered as in production. */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: requireTemporalBinary('temporal-test-server') } },
  });
  const { INDEXED_VALUE_TYPE_KEYWORD: keyword, INDEXED_VALUE_TYPE_INT: int } = temporal.api.enums.v1.IndexedValueType;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: { RolloutTarget: keyword, RolloutPhase: keyword, CanaryWeight: int },
  });
  return env;
}

export function createDevServerEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: requireTemporalBinary('temporal') },
      ip: '127.0.0.1',
      searchAttributes: [RolloutTarget, RolloutPhase, CanaryWeight],
    },
  });
}

/** Bundled once per test file: bundling is the slow part of starting a worker. */
export function bundleRolloutWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
}

let queue = 0;
export function uniqueTaskQueue(name = 'test'): string {
  queue += 1;
  return `${name}-${process.pid}-${queue}-${Date.now()}`;
}

const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
