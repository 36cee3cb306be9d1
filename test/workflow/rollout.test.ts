/**
 * The rollout workflow on Temporal's time-skipping test server: hour-long bakes pass in
 * seconds. The router and metric source are test doubles for what lies outside the system.
 */
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { RolloutSpec } from '../../src/spec';
import { abortUpdate, approveUpdate, pauseUpdate, promoteUpdate, resumeUpdate, statusQuery } from '../../src/workflows/messages';
import type { rollout } from '../../src/workflows/rollout';
import type { RolloutStatus } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics, healthy } from '../helpers/adapters';
import { makeSpec } from '../helpers/specs';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';

const server = useTimeSkippingServer();
const env = { sleep: (d: Duration) => server.env().sleep(d), client: () => server.env().client };

interface Harness {
  router: RecordingRouter;
  metrics: ScriptedMetrics;
  notifier: RecordingNotifier;
  handle: WorkflowHandle<typeof rollout>;
  spec: RolloutSpec;
}

/** Starts a rollout of `spec` with fresh adapters and runs `body` while a worker serves it. */
async function withRollout<T>(
  spec: RolloutSpec,
  body: (h: Harness) => Promise<T>,
  setup: { metrics?: ScriptedMetrics; router?: RecordingRouter; historyLimit?: number } = {},
): Promise<T> {
  const router = setup.router ?? new RecordingRouter();
  const metrics = setup.metrics ?? new ScriptedMetrics();
  const notifier = new RecordingNotifier();
  return runRollout(server, spec, { router, metrics, notifier }, (handle) => body({ router, metrics, notifier, handle, spec }), {
    historyLimit: setup.historyLimit,
  });
}

const status = (h: Harness) => h.handle.query(statusQuery);

/** Waits (skipping workflow time in small hops) until the rollout's status satisfies `ok`. */
async function waitFor(h: Harness, ok: (s: RolloutStatus) => boolean, hop: Duration = '1m'): Promise<RolloutStatus> {
  for (let i = 0; i < 500; i++) {
    const s = await status(h);
    if (ok(s)) return s;
    await env.sleep(hop);
  }
  throw new Error(`condition not reached; last status ${JSON.stringify(await status(h))}`);
}

const minutes = (ms: number) => ms / 60_000;

/** The validator's message behind a rejected update. */
async function rejection(update: Promise<unknown>): Promise<string> {
  const err = await update.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowUpdateFailedError)) throw new Error(`expected a rejected update, got ${String(err)}`);
  return err.cause?.message ?? '';
}

describe('rollout workflow', () => {
  test('a healthy candidate with one-hour bakes walks every step and is promoted', async () => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      const result = await h.handle.result();
      expect(result.phase).toBe('promoted');
      expect(result.outcome).toMatchObject({ result: 'promoted', reason: 'every step passed' });
      expect(result.weights).toEqual({ baseline: 0, candidate: 100 });
      expect(result.step).toMatchObject({ index: 3, total: 3 });
      // attach at 0%, then each step's weight exactly once
      expect(h.router.splits()).toEqual(['100/0', '90/10', '50/50', '0/100']);
      // a check every 10 minutes through two one-hour bakes; the 100% step has no bake
      expect(result.decisions).toHaveLength(12);
      expect(result.decisions.every((d) => d.verdict === 'pass')).toBe(true);
      expect(result.decisions.map((d) => d.weight)).toEqual([10, 10, 10, 10, 10, 10, 50, 50, 50, 50, 50, 50]);
      const first = result.decisions[0]!;
      expect(first.metrics.candidate).toMatchObject({ requests: 200, errors: 0 });
      expect(first.metrics.candidate.latencyP95Ms).toBeGreaterThan(100);
      expect(first.metrics.candidate.latencyP95Ms).toBeLessThanOrEqual(150);
      const spanMin = minutes(Date.parse(result.decisions[11]!.at) - Date.parse(result.startedAt));
      expect(spanMin).toBeGreaterThanOrEqual(120);
    });
  });

  test('failing checks reach the failure limit and every change is undone in reverse order', async () => {
    const spec = makeSpec();
    const metrics = new ScriptedMetrics((read) => (read <= 3 ? healthy : { ...healthy, errorRate: 0.2 }));
    await withRollout(
      spec,
      async (h) => {
        const result = await h.handle.result();
        expect(result.phase).toBe('rolled_back');
        expect(result.outcome?.result).toBe('rolled_back');
        expect(result.outcome?.reason).toMatch(/2 failed checks reached failureLimit 2/);
        expect(result.outcome?.reason).toMatch(/error rate 20\.00% \(40\/200\) is above maxErrorRate 5\.00%/);
        expect(result.failedChecks).toBe(2);
        expect(result.decisions.map((d) => d.verdict)).toEqual(['pass', 'pass', 'fail', 'fail']);
        // undos newest first: weights back to 100% baseline, then the candidate detached
        expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
        expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
        // the Temporal UI's "current details" tell the same story
        const metadata = await h.handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
        expect(metadata.currentDetails).toMatch(/\*\*rolled_back\*\*/);
        expect(metadata.currentDetails).toMatch(/last check: \*\*fail\*\* — v2 at 10%: candidate error rate 20.00% \(40\/200\) is above maxErrorRate 5.00%: rolling back/);
      },
      { metrics },
    );
  });

  test('pause freezes the bake clock and resume continues it', async () => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.decisions.length === 2);
      await env.sleep('5m');
      const paused = await h.handle.executeUpdate(pauseUpdate);
      expect(paused.phase).toBe('paused');
      const frozen = await status(h);
      await env.sleep('3h');
      const later = await status(h);
      expect(later.phase).toBe('paused');
      expect(later.step.bakedMs).toBe(frozen.step.bakedMs);
      expect(later.decisions).toHaveLength(2);
      expect(minutes(later.step.bakedMs)).toBeGreaterThanOrEqual(20);
      expect(minutes(later.step.bakedMs)).toBeLessThan(60);

      const resumed = await h.handle.executeUpdate(resumeUpdate);
      expect(resumed.phase).toBe('progressing');
      const result = await h.handle.result();
      expect(result.phase).toBe('promoted');
      expect(result.decisions).toHaveLength(12);
      // the third check waited out the pause and then only the rest of its interval
      const gapMin = minutes(Date.parse(result.decisions[2]!.at) - Date.parse(result.decisions[1]!.at));
      expect(gapMin).toBeGreaterThanOrEqual(190);
      expect(gapMin).toBeLessThan(200);
      // the step's six checks still span exactly its hour of (unpaused) bake
      const totalMin = minutes(Date.parse(result.decisions[5]!.at) - Date.parse(result.startedAt));
      expect(totalMin).toBeGreaterThanOrEqual(240);
    });
  });

  test.each([
    ['progressing', async (_h: Harness) => undefined],
    ['paused', async (h: Harness) => void (await h.handle.executeUpdate(pauseUpdate))],
  ])('abort while %s restores traffic and ends aborted', async (phase, prepare) => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.decisions.length >= 1 && s.weights.candidate === 10);
      await prepare(h);
      expect((await status(h)).phase).toBe(phase);
      const aborting = await h.handle.executeUpdate(abortUpdate, { args: [{ reason: 'bad outputs reported' }] });
      expect(aborting.phase).toBe('rolling_back');
      const result = await h.handle.result();
      expect(result.phase).toBe('aborted');
      expect(result.outcome).toMatchObject({ result: 'aborted', reason: 'bad outputs reported' });
      expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
    });
  });

  test('a manual gate waits for approval; abort there also restores traffic', async () => {
    const spec = makeSpec({ steps: [{ weight: 10, bake: '1h', gate: 'manual' }, { weight: 100 }] });
    await withRollout(spec, async (h) => {
      const waiting = await waitFor(h, (s) => s.phase === 'awaiting_approval', '10m');
      expect(waiting.decisions).toHaveLength(6);
      await env.sleep('5h'); // nothing moves without an operator
      expect((await status(h)).phase).toBe('awaiting_approval');
      await h.handle.executeUpdate(abortUpdate, { args: [{}] });
      const result = await h.handle.result();
      expect(result.outcome).toMatchObject({ result: 'aborted', reason: 'aborted by operator' });
      expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
    });
  });

  test('approve lets a manual gate pass', async () => {
    const spec = makeSpec({ steps: [{ weight: 10, bake: '1h', gate: 'manual' }, { weight: 100 }] });
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.phase === 'awaiting_approval', '10m');
      const approved = await h.handle.executeUpdate(approveUpdate);
      expect(approved.phase).toBe('progressing');
      const result = await h.handle.result();
      expect(result.phase).toBe('promoted');
      expect(h.router.splits()).toEqual(['100/0', '90/10', '0/100']);
    });
  });

  test('a manual gate on the last step holds 100% until approved, then promotes', async () => {
    const spec = makeSpec({ steps: [{ weight: 10, bake: '1h' }, { weight: 100, bake: '1h', gate: 'manual' }] });
    await withRollout(spec, async (h) => {
      const waiting = await waitFor(h, (s) => s.phase === 'awaiting_approval', '10m');
      expect(waiting.weights).toEqual({ baseline: 0, candidate: 100 });
      expect(waiting.outcome).toBeUndefined();
      await h.handle.executeUpdate(approveUpdate);
      const result = await h.handle.result();
      expect(result.outcome).toMatchObject({ result: 'promoted', reason: 'every step passed' });
      expect(h.router.splits()).toEqual(['100/0', '90/10', '0/100']);
    });
  });

  test('promote skips the remaining steps', async () => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.decisions.length >= 1);
      await h.handle.executeUpdate(promoteUpdate);
      const result = await h.handle.result();
      expect(result.outcome).toMatchObject({ result: 'promoted', reason: 'promoted by operator' });
      expect(h.router.splits()).toEqual(['100/0', '90/10', '0/100']);
      expect(result.decisions.length).toBeLessThan(6);
    });
  });

  test('actions that do not apply in the current phase are rejected', async () => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.decisions.length >= 1);
      await expect(h.handle.executeUpdate(resumeUpdate)).rejects.toThrow(WorkflowUpdateFailedError);
      expect(await rejection(h.handle.executeUpdate(approveUpdate))).toMatch(/cannot approve a rollout that is progressing/);
      await h.handle.executeUpdate(pauseUpdate);
      expect(await rejection(h.handle.executeUpdate(pauseUpdate))).toMatch(/cannot pause a rollout that is paused/);
      await h.handle.executeUpdate(promoteUpdate);
      const result = await h.handle.result();
      expect(result.phase).toBe('promoted');
    });
  });

  test('inconclusive checks never count as a pass: the step holds until a check passes', async () => {
    const spec = makeSpec();
    const metrics = new ScriptedMetrics({ ...healthy, requests: 10 });
    await withRollout(
      spec,
      async (h) => {
        const holding = await waitFor(h, (s) => s.decisions.length >= 9, '10m');
        expect(holding.step.index).toBe(0);
        expect(holding.weights.candidate).toBe(10);
        expect(holding.step.bakedMs).toBeGreaterThan(holding.step.bakeMs);
        expect(holding.decisions.every((d) => d.verdict === 'inconclusive')).toBe(true);
        expect(holding.decisions[0]!.reasons[0]).toMatch(/10 requests, fewer than minRequests 50/);
        metrics.candidate = healthy; // traffic arrives
        const result = await h.handle.result();
        expect(result.phase).toBe('promoted');
        expect(result.failedChecks).toBe(0);
      },
      { metrics },
    );
  });

  test('too many inconclusive checks in a row roll back when a limit is set', async () => {
    const spec = makeSpec({ analysis: { judge: 'threshold', interval: '10m', minRequests: 50, inconclusiveLimit: 3 } });
    const metrics = new ScriptedMetrics({ ...healthy, requests: 0 });
    await withRollout(
      spec,
      async (h) => {
        const result = await h.handle.result();
        expect(result.phase).toBe('rolled_back');
        expect(result.outcome?.reason).toMatch(/3 inconclusive checks in a row reached inconclusiveLimit 3/);
        expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
      },
      { metrics },
    );
  });

  test('a router that keeps failing a forward change ends the rollout failed, with traffic restored', async () => {
    const spec = makeSpec();
    const router = new RecordingRouter();
    router.failWhen = (route) => route.versions[1]?.weight === 50; // the second step cannot be applied
    await withRollout(
      spec,
      async (h) => {
        const result = await h.handle.result();
        expect(result.phase).toBe('failed');
        expect(result.outcome?.reason).toMatch(/activity setTrafficWeights failed/);
        expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
        expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
      },
      { router },
    );
  });

  test('a router that cannot restore traffic leaves the rollout failed, saying so', async () => {
    const spec = makeSpec();
    const router = new RecordingRouter();
    const metrics = new ScriptedMetrics((read) => (read <= 1 ? healthy : { ...healthy, errorRate: 0.5 }));
    await withRollout(
      spec,
      async (h) => {
        await waitFor(h, (s) => s.decisions.length >= 1);
        router.failWhen = (route) => route.versions.length === 1; // detaching the candidate fails
        const result = await h.handle.result();
        expect(result.phase).toBe('failed');
        expect(result.outcome?.reason).toMatch(/compensation incomplete.*detach candidate v2/);
        expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0']);
      },
      { metrics, router },
    );
  });

  test('cancelling the workflow compensates and ends aborted', async () => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.decisions.length >= 1);
      await h.handle.cancel();
      const result = await h.handle.result();
      expect(result.outcome).toMatchObject({ result: 'aborted', reason: 'rollout workflow cancelled' });
      expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
    });
  });

  test('continue-as-new (forced by a small history limit) keeps every decision', async () => {
    const spec = makeSpec();
    await withRollout(
      spec,
      async (h) => {
        const firstRunId = (await h.handle.describe()).runId;
        const result = await h.handle.result();
        expect(result.phase).toBe('promoted');
        expect(result.decisions).toHaveLength(12);
        expect(result.decisions.map((d) => d.weight)).toEqual([10, 10, 10, 10, 10, 10, 50, 50, 50, 50, 50, 50]);
        expect(h.router.splits()).toEqual(['100/0', '90/10', '50/50', '0/100']);
        const first = await env.client().workflow.getHandle(h.handle.workflowId, firstRunId).describe();
        expect(first.status.name).toBe('CONTINUED_AS_NEW');
        const last = await env.client().workflow.getHandle(h.handle.workflowId).describe();
        expect(last.runId).not.toBe(firstRunId);
      },
      { historyLimit: 30 },
    );
  });

  test('phase changes and decisions are sent to the webhook', async () => {
    const spec = makeSpec({ notify: { webhook: 'http://127.0.0.1:9999/hook' } });
    await withRollout(spec, async (h) => {
      await h.handle.result();
      const kinds = h.notifier.events.map((e) => e.event.kind);
      expect(kinds.filter((k) => k === 'decision')).toHaveLength(12);
      const phases = h.notifier.events.filter((e) => e.event.kind === 'phase').map((e) => e.event.phase);
      expect(phases).toEqual(['progressing', 'promoted']);
      expect(h.notifier.events.every((e) => e.destination === 'http://127.0.0.1:9999/hook')).toBe(true);
    });
  });
});
