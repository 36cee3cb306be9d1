/**
 * Signals as an operator sends them: the real `temporal` CLI (`temporal workflow signal`) against
 * a real dev server and worker. Pause holds, a signal in the wrong phase is recorded and
 * harmless, abort brings traffic back to 100% baseline.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { ROLLOUT_WORKFLOW, rolloutWorkflowId, statusQuery } from '../../src/workflows/messages';
import type { rollout } from '../../src/workflows/rollout';
import type { RolloutStatus } from '../../src/workflows/status';
import { startDevServer, startTestWorker, type TestWorker } from '../helpers/dev-server';
import { eventually } from '../helpers/http';
import { makeSpec, uniqueTarget } from '../helpers/specs';

const run = promisify(execFile);
let env: TestWorkflowEnvironment;
let worker: TestWorker;

beforeAll(async () => {
  env = await startDevServer();
  worker = await startTestWorker(env);
});

afterAll(async () => {
  await worker?.shutdown();
  await env?.teardown();
});

/** `temporal workflow signal`, exactly as the README shows it. */
async function signal(workflowId: string, name: string, input?: unknown): Promise<void> {
  const args = ['workflow', 'signal', '--address', env.address, '--namespace', worker.namespace, '--workflow-id', workflowId, '--name', name];
  if (input !== undefined) args.push('--input', JSON.stringify(input));
  await run(requireTemporalBinary('temporal'), args, { timeout: 30_000 });
}

test('pause, an inapplicable approve and abort through `temporal workflow signal`', async () => {
  const spec = makeSpec({
    target: uniqueTarget('cli'),
    steps: [{ weight: 10, bake: '5m' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 50 },
  });
  const workflowId = rolloutWorkflowId(spec.target);
  const handle = await env.client.workflow.start<typeof rollout>(ROLLOUT_WORKFLOW, { taskQueue: worker.taskQueue, workflowId, args: [{ spec }] });
  try {
    const status = () => handle.query(statusQuery);
    const until = (ok: (s: RolloutStatus) => boolean, what: string) => eventually(async () => { const s = await status(); return ok(s) ? s : undefined; }, 30_000, what);
    await until((s) => s.weights.candidate === 10 && s.decisions.length >= 1, 'the first check at 10%');

    await signal(workflowId, 'pause', { by: 'alice' });
    const paused = await until((s) => s.phase === 'paused', 'paused');
    expect(paused.events.at(-1)).toMatchObject({ action: 'pause', via: 'signal', by: 'alice', applied: true });
    // Paused holds: no checks and no bake time while it lasts.
    const checks = paused.decisions.length;
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const held = await status();
    expect(held.phase).toBe('paused');
    expect(held.decisions).toHaveLength(checks);
    expect(held.step.bakedMs).toBe(paused.step.bakedMs);

    await signal(workflowId, 'approve'); // no manual gate here: recorded, nothing changes
    const refused = await until((s) => s.events.length >= 2, 'the approve to be recorded');
    expect(refused.events.at(-1)).toMatchObject({ action: 'approve', via: 'signal', applied: false, note: expect.stringMatching(/cannot approve a rollout that is paused/) });
    expect(refused.phase).toBe('paused');

    await signal(workflowId, 'abort', { reason: 'bad answers', by: 'alice' });
    const result = await handle.result();
    expect(result.phase).toBe('aborted');
    expect(result.outcome?.reason).toBe('bad answers');
    expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
    const routes = worker.router.routes.filter((r) => r.target === spec.target);
    expect(routes.at(-1)!.versions).toEqual([expect.objectContaining({ version: 'v1', weight: 100 })]);
  } finally {
    await handle.terminate('test finished').catch(() => undefined);
  }
});
