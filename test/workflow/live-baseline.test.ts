/**
 * The live baseline in the workflow, on the time-skipping server: the route that serves the
 * target is captured before the rollout's first change and restored exactly by compensation
 * (also after continue-as-new); a route that no longer is the spec's baseline when the rollout
 * attaches fails it before anything changes.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { TrafficRoute } from '../../src/activities/types';
import { abortUpdate, statusQuery } from '../../src/workflows/messages';
import type { rollout } from '../../src/workflows/rollout';
import type { RolloutStatus } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics, healthy } from '../helpers/adapters';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';
import { makeSpec } from '../helpers/specs';

const server = useTimeSkippingServer();

/** What serves the target before the rollout: v1 (the spec's baseline, its URL with a slash), a salt of its own, an old version left at 0%. */
const liveRoute = (target: string): TrafficRoute => ({
  target,
  routerState: { salt: 'salt-before-the-rollout' },
  versions: [
    { version: 'v0', url: 'http://127.0.0.1:9000', weight: 0 },
    { version: 'v1', url: 'http://127.0.0.1:9001/', weight: 100 },
  ],
});

async function waitFor(handle: WorkflowHandle<typeof rollout>, ok: (s: RolloutStatus) => boolean): Promise<RolloutStatus> {
  for (let i = 0; i < 500; i++) {
    const s = await handle.query(statusQuery);
    if (ok(s)) return s;
    await server.env().sleep('1m');
  }
  throw new Error(`condition not reached; last status ${JSON.stringify(await handle.query(statusQuery))}`);
}

describe('the route before the rollout', () => {
  test('is captured before the first change, and an abort restores it exactly (versions, weights, URLs, salt)', async () => {
    const spec = makeSpec();
    const before = liveRoute(spec.target);
    const router = new RecordingRouter();
    router.live.set(spec.target, structuredClone(before));
    await runRollout(server, spec, { router, metrics: new ScriptedMetrics(), notifier: new RecordingNotifier() }, async (handle) => {
      await waitFor(handle, (s) => s.weights.candidate === 10 && s.decisions.length >= 1);
      await handle.executeUpdate(abortUpdate, { args: [{ reason: 'test abort' }] });
      const result = await handle.result();
      expect(result).toMatchObject({ phase: 'aborted', weights: { baseline: 100, candidate: 0 }, outcome: { result: 'aborted', reason: 'test abort' } });
      // Attach at 0%, the step, then the undos newest first: 100% baseline, then the captured route.
      expect(router.splits()).toEqual(['100/0', '90/10', '100/0', '0/100']);
      expect(router.routes.at(-1)).toEqual(before);
      expect(router.live.get(spec.target)).toEqual(before);
    });
  });

  test('survives continue-as-new: a rollback after several runs still restores it', async () => {
    const spec = makeSpec();
    const before = liveRoute(spec.target);
    const router = new RecordingRouter();
    router.live.set(spec.target, structuredClone(before));
    // Healthy through the first step, then failing checks: rolled back in the second step.
    const metrics = new ScriptedMetrics((read) => (read <= 8 ? healthy : { ...healthy, errorRate: 0.5 }));
    await runRollout(
      server,
      spec,
      { router, metrics, notifier: new RecordingNotifier() },
      async (handle) => {
        const firstRunId = (await handle.describe()).runId;
        const result = await handle.result();
        expect(result.phase).toBe('rolled_back');
        const first = await server.env().client.workflow.getHandle(handle.workflowId, firstRunId).describe();
        expect(first.status.name).toBe('CONTINUED_AS_NEW');
        expect(router.splits()).toEqual(['100/0', '90/10', '50/50', '100/0', '0/100']);
        expect(router.routes.at(-1)).toEqual(before);
      },
      { historyLimit: 30 },
    );
  });

  test('no longer the spec\'s baseline at attach (changed after the API checked it): the rollout fails, nothing changed', async () => {
    const spec = makeSpec();
    const router = new RecordingRouter();
    const now: TrafficRoute = { target: spec.target, versions: [{ version: 'v3', url: 'http://127.0.0.1:9003', weight: 100 }] };
    router.live.set(spec.target, structuredClone(now));
    await runRollout(server, spec, { router, metrics: new ScriptedMetrics(), notifier: new RecordingNotifier() }, async (handle) => {
      const result = await handle.result();
      expect(result.phase).toBe('failed');
      expect(result.outcome?.reason).toBe(
        `the live route changed after the rollout was accepted: target ${spec.target} serves v3 100% (http://127.0.0.1:9003), ` +
          'not the baseline v1 at 100% (http://127.0.0.1:9001); nothing was changed',
      );
      expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
      expect(router.routes).toEqual([]);
      expect(router.live.get(spec.target)).toEqual(now);
    });
  });

  test('an abort while the route is being read is accepted, and ends the rollout aborted with nothing changed', async () => {
    const spec = makeSpec();
    const router = new RecordingRouter();
    router.live.set(spec.target, liveRoute(spec.target));
    let reading!: () => void;
    const readStarted = new Promise<void>((resolve) => (reading = resolve));
    let release!: () => void;
    router.beforeRead = () => {
      reading();
      return new Promise<void>((resolve) => (release = resolve));
    };
    await runRollout(server, spec, { router, metrics: new ScriptedMetrics(), notifier: new RecordingNotifier() }, async (handle) => {
      await readStarted;
      const answered = await handle.executeUpdate(abortUpdate, { args: [{ reason: 'aborted mid-read' }] });
      expect(answered.phase).toBe('rolling_back');
      release();
      const result = await handle.result();
      expect(result.outcome).toMatchObject({ result: 'aborted', reason: 'aborted mid-read' });
      expect(router.routes).toEqual([]);
    });
  });

  test('a router that cannot be read fails the rollout before anything changes', async () => {
    const spec = makeSpec();
    const router = new RecordingRouter();
    router.failReads = true;
    await runRollout(server, spec, { router, metrics: new ScriptedMetrics(), notifier: new RecordingNotifier() }, async (handle) => {
      const result = await handle.result();
      expect(result.phase).toBe('failed');
      expect(result.outcome?.reason).toMatch(/activity readTrafficRoute failed/);
      expect(router.routes).toEqual([]);
    });
  });
});
