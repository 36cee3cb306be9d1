/** The worker's capacity settings (WORKER_MAX_CACHED_WORKFLOWS, …) and the Worker.create options they make. */
import { loadConfig, WORKER_TUNING_DEFAULTS } from '../../src/config';
import { workerTuningOptions } from '../../src/worker';

test('defaults: a cache for 2,000 rollouts, the SDK defaults otherwise', () => {
  expect(loadConfig({}).workerTuning).toEqual(WORKER_TUNING_DEFAULTS);
  expect(workerTuningOptions(WORKER_TUNING_DEFAULTS)).toEqual({
    maxCachedWorkflows: 2_000,
    maxConcurrentWorkflowTaskExecutions: 40,
    maxConcurrentActivityTaskExecutions: 100,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: 10 },
    activityTaskPollerBehavior: { type: 'simple-maximum', maximum: 10 },
  });
});

test('each setting from its variable; in-flight workflow tasks never above the cache', () => {
  const tuning = loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '50', WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '200', WORKER_MAX_CONCURRENT_ACTIVITIES: '7', WORKER_WORKFLOW_TASK_POLLERS: '4', WORKER_ACTIVITY_TASK_POLLERS: '3' }).workerTuning;
  expect(tuning).toEqual({ maxCachedWorkflows: 50, maxConcurrentWorkflowTaskExecutions: 200, maxConcurrentActivityTaskExecutions: 7, workflowTaskPollers: 4, activityTaskPollers: 3 });
  expect(workerTuningOptions(tuning).maxConcurrentWorkflowTaskExecutions).toBe(50);
});

test('a bad value names its variable', () => {
  expect(() => loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '1' })).toThrow(/WORKER_MAX_CACHED_WORKFLOWS must be an integer from 2/);
  expect(() => loadConfig({ WORKER_WORKFLOW_TASK_POLLERS: 'many' })).toThrow(/WORKER_WORKFLOW_TASK_POLLERS/);
});
