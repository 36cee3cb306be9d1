/**
 * The control plane of end-to-end tests: a worker with the production adapters (the registries,
 * as `npm run serve` has them) and the REST API, on a task queue of their own, against a running
 * Temporal server; plus the few REST calls the tests make.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { registryRouters } from '../../src/activities';
import { createApp } from '../../src/api/app';
import { adapterSettings, loadConfig, type Config } from '../../src/config';
import type { RolloutSpecInput } from '../../src/spec';
import { createWorker, defaultActivityDeps } from '../../src/worker';
import type { RolloutStatus } from '../../src/workflows/status';
import { uniqueTaskQueue, workflowBundle } from './dev-server';
import { eventually, listen, request, type Listening } from './http';

export interface ControlPlane {
  api: Listening;
  worker: Worker;
  config: Config;
  stop(): Promise<void>;
}

/** Settings as the environment would give them (`loadConfig`), with `overrides` (e.g. gatewayUrl, kubeconfig). */
export async function startControlPlane(env: TestWorkflowEnvironment, overrides: Partial<Config> = {}): Promise<ControlPlane> {
  const namespace = env.namespace ?? 'default';
  const config: Config = { ...loadConfig({}), namespace, taskQueue: uniqueTaskQueue('e2e'), temporalUiUrl: 'http://127.0.0.1:8233', ...overrides };
  const worker = await createWorker(env.nativeConnection, config, defaultActivityDeps(config), { workflowsPath: undefined, workflowBundle: await workflowBundle() });
  const running = worker.run();
  running.catch(() => undefined);
  const api = await listen(createApp({ client: env.client, config, routerFor: registryRouters(adapterSettings(config)) }));
  return {
    api,
    worker,
    config,
    async stop() {
      await api.close();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
    },
  };
}

export const FINAL_PHASES = ['promoted', 'rolled_back', 'aborted', 'failed'];

export async function startRollout(api: Listening, spec: RolloutSpecInput): Promise<RolloutStatus> {
  const res = await request<RolloutStatus>(api.url, 'POST', '/v1/rollouts', { body: spec });
  if (res.status !== 201) throw new Error(`POST /v1/rollouts: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function rolloutStatus(api: Listening, id: string): Promise<RolloutStatus> {
  const res = await request<RolloutStatus>(api.url, 'GET', `/v1/rollouts/${id}`);
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function waitForRollout(api: Listening, id: string, done: (s: RolloutStatus) => boolean, what: string, timeoutMs = 45_000): Promise<RolloutStatus> {
  return eventually(async () => {
    const s = await rolloutStatus(api, id);
    return done(s) ? s : undefined;
  }, timeoutMs, `${id}: ${what}`);
}

export const rolloutEnded = (api: Listening, id: string, timeoutMs?: number) => waitForRollout(api, id, (s) => FINAL_PHASES.includes(s.phase), 'the end', timeoutMs);

/** Fails with the whole story (outcome, every check) when the rollout did not end as expected. */
export function expectEnded(s: RolloutStatus, phase: string): void {
  if (s.phase === phase) return;
  const checks = s.decisions.map((d) => `  step ${d.step} @${d.weight}% ${d.verdict}: ${d.reasons.join('; ')} ${JSON.stringify(d.metrics.candidate)}`);
  throw new Error(`${s.id} ended ${s.phase}, expected ${phase}: ${s.outcome?.reason}\n${checks.join('\n')}`);
}
