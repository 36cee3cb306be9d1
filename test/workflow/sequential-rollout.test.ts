/**
 * Rollouts judged by the sequential judge, on the time-skipping server: evidence kept across
 * checks and steps, adaptive steps, holds. Test doubles stand in for the router and metrics.
 */
import type { Duration } from '@temporalio/common';
import type { RolloutSpec } from '../../src/spec';
import { statusQuery } from '../../src/workflows/messages';
import type { RolloutStatus } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics, type TrafficProfile } from '../helpers/adapters';
import { makeSpec } from '../helpers/specs';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';

const server = useTimeSkippingServer();
const env = { sleep: (d: Duration) => server.env().sleep(d) };

const base: TrafficProfile = { requests: 0, errorRate: 0.001, latencyMs: 120, latencySpread: 0.5 };

/** 10,000 requests per interval split by the applied weights, like a real gateway. */
function weightedMetrics(router: RecordingRouter, candidate: TrafficProfile | ((read: number) => TrafficProfile)): ScriptedMetrics {
  const metrics = new ScriptedMetrics(candidate, base);
  metrics.splitBy = { router, totalRequests: 10_000 };
  return metrics;
}

function sequentialSpec(overrides: Parameters<typeof makeSpec>[0] = {}): RolloutSpec {
  return makeSpec({
    steps: [{ weight: 10, bake: '1h' }, { weight: 50, bake: '1h' }, { weight: 100 }],
    analysis: { judge: 'sequential', interval: '5m', minRequests: 50, maxExtensionChecks: 4 },
    ...overrides,
  });
}

async function run(
  spec: RolloutSpec,
  candidate: TrafficProfile | ((read: number) => TrafficProfile),
  body: (ctx: {
    router: RecordingRouter;
    metrics: ScriptedMetrics;
    notifier: RecordingNotifier;
    result: () => Promise<RolloutStatus>;
    status: () => Promise<RolloutStatus>;
  }) => Promise<void>,
  historyLimit?: number,
): Promise<void> {
  const router = new RecordingRouter();
  const metrics = weightedMetrics(router, candidate);
  const notifier = new RecordingNotifier();
  await runRollout(
    server,
    spec,
    { router, metrics, notifier },
    (handle) =>
      body({
        router,
        metrics,
        notifier,
        result: () => handle.result(),
        status: () => handle.query(statusQuery),
      }),
    { historyLimit },
  );
}

describe('rollouts with the sequential judge', () => {
  test('a candidate with ×5 the errors is rolled back at its first failing check', async () => {
    await run(sequentialSpec(), { ...base, errorRate: 0.005 }, async ({ router, result }) => {
      const final = await result();
      expect(final.phase).toBe('rolled_back');
      expect(final.outcome?.reason).toMatch(/the sequential judge failed the candidate/);
      expect(final.failedChecks).toBe(1);
      const failing = final.decisions[final.decisions.length - 1]!;
      expect(failing.verdict).toBe('fail');
      expect(failing.evidence).toBeDefined();
      expect(final.decisions.length).toBeLessThanOrEqual(4);
      expect(router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
    });
  });

  test('clear evidence ends a step of at most 25% early, not a larger one; the evidence carries across steps', async () => {
    await run(sequentialSpec({ steps: [{ weight: 10, bake: '4h' }, { weight: 50, bake: '1h' }, { weight: 100 }] }), base, async ({ router, result }) => {
      const final = await result();
      expect(final.phase).toBe('promoted');
      expect(router.splits()).toEqual(['100/0', '90/10', '50/50', '0/100']);
      const atTen = final.decisions.filter((d) => d.weight === 10);
      // a 4-hour bake at a 5-minute interval would be 48 checks; evidence ended it sooner
      expect(atTen.length).toBeLessThan(48);
      expect(atTen.length).toBeGreaterThanOrEqual(2);
      expect(final.decisions.some((d) => d.reasons.join(' ').match(/ready to advance/))).toBe(true);
      const stepMinutes = (Date.parse(final.decisions[atTen.length]!.at) - Date.parse(final.startedAt)) / 60_000;
      expect(stepMinutes).toBeLessThan(240);
      // Beyond 25% the bake is served in full although the evidence was ready all along:
      // a 1-hour bake at a 5-minute interval is 12 checks.
      const atFifty = final.decisions.filter((d) => d.weight === 50);
      expect(atFifty.length).toBe(12);
      expect(atFifty.every((d) => d.reasons.join(' ').includes('ready to advance'))).toBe(true);
    });
  });

  test('missing candidate metrics hold the step (inconclusive), never pass it', async () => {
    const nothing: TrafficProfile = { ...base, requests: 0 };
    const spec = sequentialSpec({ analysis: { judge: 'sequential', interval: '5m', minRequests: 50, inconclusiveLimit: 0, sequential: { maxConsecutiveInconclusive: 0 } } });
    await run(spec, nothing, async ({ router, metrics, status, result }) => {
      metrics.splitBy = undefined; // the candidate's numbers are missing, whatever its weight
      metrics.baseline = { ...base, requests: 9_000 };
      let s = await status();
      for (let i = 0; i < 200 && s.decisions.length < 15; i++) {
        await env.sleep('5m');
        s = await status();
      }
      expect(s.step.index).toBe(0);
      expect(s.phase).toBe('progressing');
      expect(s.decisions.length).toBeGreaterThanOrEqual(15);
      expect(s.decisions.every((d) => d.verdict === 'inconclusive')).toBe(true);
      expect(s.step.bakedMs).toBeGreaterThan(s.step.bakeMs);
      metrics.candidate = base;
      metrics.baseline = base;
      metrics.splitBy = { router, totalRequests: 10_000 }; // the candidate's numbers arrive
      const final = await result();
      expect(final.phase).toBe('promoted');
    });
  });

  test('going beyond 25% without clear evidence holds the step, still checking, and moves on once the evidence is there', async () => {
    // Rare errors at the baseline's rate: too few events to bound the ratio below 1.2 within the
    // bake and extensions. (The absolute error-rate path is off here: it would bound them.)
    const spec = sequentialSpec({
      steps: [{ weight: 10, bake: '10m' }, { weight: 50, bake: '10m' }, { weight: 100 }],
      analysis: { judge: 'sequential', interval: '5m', minRequests: 50, maxExtensionChecks: 4, sequential: { readyErrorRateSlack: 0 } },
      notify: { webhook: 'http://127.0.0.1:9/hooks' },
    });
    await run(spec, { ...base, errorRate: 0.00125, requests: 0 }, async ({ metrics, status, result, notifier }) => {
      let s = await status();
      for (let i = 0; i < 100 && !s.step.holding && s.outcome === undefined; i++) {
        await env.sleep('5m');
        s = await status();
      }
      expect(s.step.holding).toMatch(/^holding at 10%: after \d+ checks the evidence does not yet bound every metric below its tolerance/);
      // The status says why it waits, in a stable code and a plain sentence.
      expect(s.step.waiting).toEqual({ reason: 'needs_evidence', message: s.step.holding, ...(s.step.waiting?.estimate ? { estimate: s.step.waiting.estimate } : {}) });
      expect(s.decisions.at(-1)).toMatchObject({ then: { action: 'hold' }, waiting: { reason: 'needs_evidence' } });
      expect(s).toMatchObject({ phase: 'progressing', step: { index: 0 }, weights: { candidate: 10 } });
      // Not a pause: the checks (and the rollback test) go on while it holds.
      const checksWhenHeld = s.decisions.length;
      await env.sleep('30m');
      s = await status();
      expect(s.decisions.length).toBeGreaterThan(checksWhenHeld);
      expect(s.step.index).toBe(0);
      // The candidate turns out clearly better: the evidence bounds the ratio and the step ends by itself.
      metrics.candidate = { ...base, errorRate: 0, requests: 0 };
      const final = await result();
      expect(final.phase).toBe('promoted');
      expect(final.step.holding).toBeUndefined();
      const holds = notifier.events.filter((e) => e.event.kind === 'hold').map((e) => e.event.message);
      // Said when the step first waits (extended for evidence), and once when it holds: not at every check.
      expect(holds).toEqual([expect.stringMatching(/needs it, so the step is extended \(0 of 4 extra checks\)/), expect.stringMatching(/^holding at 10%/)]);
    });
  });

  test('readiness advisory: the same unready evidence no longer holds: each step ends after its bake, readiness only reported', async () => {
    const spec = sequentialSpec({
      steps: [{ weight: 10, bake: '10m' }, { weight: 50, bake: '10m' }, { weight: 100 }],
      analysis: { judge: 'sequential', interval: '5m', minRequests: 50, readiness: 'advisory', sequential: { readyErrorRateSlack: 0 } },
    });
    await run(spec, { ...base, errorRate: 0.00125, requests: 0 }, async ({ result, router }) => {
      const final = await result();
      expect(final.phase).toBe('promoted');
      // Two checks per 10-minute step at a 5-minute interval, no extension, no hold.
      expect(final.decisions.map((d) => [d.weight, d.then?.action])).toEqual([
        [10, 'bake'],
        [10, 'end'],
        [50, 'bake'],
        [50, 'end'],
      ]);
      expect(final.decisions.every((d) => d.verdict === 'pass')).toBe(true);
      expect(final.decisions.some((d) => (d.evidence?.errors as { ready?: boolean } | undefined)?.ready === false)).toBe(true);
      expect(router.splits()).toEqual(['100/0', '90/10', '50/50', '0/100']);
    });
  });

  test('the judge state survives continue-as-new: no evidence is lost', async () => {
    const spec = sequentialSpec();
    await run(
      spec,
      (read) => (read <= 4 ? base : { ...base, errorRate: 0.005 }),
      async ({ result }) => {
        const final = await result();
        expect(final.phase).toBe('rolled_back');
        const last = final.decisions[final.decisions.length - 1]!.evidence as { checks?: number } | undefined;
        expect(final.decisions.length).toBeGreaterThan(3);
        // the judge counted every check, across runs
        expect(JSON.stringify(last)).toContain(`"checks":${final.decisions.length}`);
      },
      25,
    );
  });
});
