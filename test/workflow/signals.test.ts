/**
 * Operator actions as Signals (what `temporal workflow signal` and the Temporal UI send): applied
 * with the phase rules of the updates, recorded with who and why, and — when they do not apply
 * or carry nonsense — recorded as such, never failing the workflow.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { OPERATOR_SIGNALS, statusQuery } from '../../src/workflows/messages';
import type { rollout } from '../../src/workflows/rollout';
import type { RolloutStatus } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics } from '../helpers/adapters';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';
import { makeSpec } from '../helpers/specs';

const server = useTimeSkippingServer();

async function until(handle: WorkflowHandle<typeof rollout>, ok: (s: RolloutStatus) => boolean): Promise<RolloutStatus> {
  for (let i = 0; i < 200; i++) {
    const s = await handle.query(statusQuery);
    if (ok(s)) return s;
    await server.env().sleep('1m');
  }
  throw new Error('condition not reached');
}

test('pause, a signal that does not apply, nonsense, resume and abort — all by signal', async () => {
  const router = new RecordingRouter();
  await runRollout(server, makeSpec(), { router, metrics: new ScriptedMetrics(), notifier: new RecordingNotifier() }, async (handle) => {
    await until(handle, (s) => s.decisions.length >= 1);

    await handle.signal(OPERATOR_SIGNALS.pause, { by: 'alice', reason: 'looking at a dashboard' });
    const paused = await until(handle, (s) => s.phase === 'paused');
    expect(paused.events.at(-1)).toMatchObject({ action: 'pause', via: 'signal', by: 'alice', applied: true });
    // Paused: the bake clock stands still while workflow time passes.
    await server.env().sleep('3h');
    const stillPaused = await handle.query(statusQuery);
    expect(stillPaused.phase).toBe('paused');
    expect(stillPaused.step.bakedMs).toBe(paused.step.bakedMs);

    // Approve applies only at a manual gate: recorded with why, nothing changes.
    await handle.signal(OPERATOR_SIGNALS.approve, { by: 'bob' });
    // A hand-typed payload that is not an object, and one with odd fields, are harmless too.
    await handle.signal(OPERATOR_SIGNALS.resume as never, 42 as never);
    const afterOdd = await until(handle, (s) => s.events.length >= 3);
    expect(afterOdd.events[1]).toMatchObject({ action: 'approve', via: 'signal', by: 'bob', applied: false, note: expect.stringMatching(/cannot approve a rollout that is paused/) });
    expect(afterOdd.events[2]).toMatchObject({ action: 'resume', via: 'signal', applied: true });
    // A raw signal without `by` came through Temporal itself: the audit says so.
    expect(afterOdd.events[2]!.by).toBe('temporal');
    expect(afterOdd.phase).toBe('progressing');

    await handle.signal(OPERATOR_SIGNALS.abort, { by: 'carol', reason: 'bad answers reported' });
    const result = await handle.result();
    expect(result.phase).toBe('aborted');
    expect(result.outcome?.reason).toBe('bad answers reported');
    expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
    expect(router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
    expect(result.events.at(-1)).toMatchObject({ action: 'abort', via: 'signal', by: 'carol', reason: 'bad answers reported', applied: true });
  });
});

test('an abort signal while already rolling back is recorded and ignored', async () => {
  const router = new RecordingRouter();
  // Restoring traffic fails for a while, so the rollout stays in rolling_back.
  let failures = 0;
  router.failWhen = (route) => route.versions.length === 2 && route.versions[1]!.weight === 0 && router.routes.length > 1 && failures++ < 3;
  await runRollout(server, makeSpec(), { router, metrics: new ScriptedMetrics(), notifier: new RecordingNotifier() }, async (handle) => {
    await until(handle, (s) => s.decisions.length >= 1);
    await handle.signal(OPERATOR_SIGNALS.abort, { reason: 'first' });
    await handle.signal(OPERATOR_SIGNALS.abort, { reason: 'second' });
    const result = await handle.result();
    expect(result.phase).toBe('aborted');
    expect(result.outcome?.reason).toBe('first');
    expect(result.events.map((e) => [e.reason, e.applied])).toEqual([
      ['first', true],
      ['second', false],
    ]);
    expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
  });
});
