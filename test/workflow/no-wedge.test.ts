/**
 * Issue 8 on the time-skipping server: inputs and faults that once wedged a rollout with traffic
 * on the candidate. Fractional weights, a metric source that goes away, slow checks, and status
 * paging: each ends with the rollout in a final phase and traffic where it belongs.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { RolloutSpec } from '../../src/spec';
import { abortUpdate, statusQuery } from '../../src/workflows/messages';
import type { rollout } from '../../src/workflows/rollout';
import { CanaryWeight } from '../../src/workflows/search-attributes';
import type { RolloutStatus } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics } from '../helpers/adapters';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';
import { makeSpec } from '../helpers/specs';

const server = useTimeSkippingServer();

interface Harness {
  router: RecordingRouter;
  metrics: ScriptedMetrics;
  notifier: RecordingNotifier;
  handle: WorkflowHandle<typeof rollout>;
}

async function withRollout<T>(spec: RolloutSpec, body: (h: Harness) => Promise<T>, metrics = new ScriptedMetrics()): Promise<T> {
  const router = new RecordingRouter();
  const notifier = new RecordingNotifier();
  return runRollout(server, spec, { router, metrics, notifier }, (handle) => body({ router, metrics, notifier, handle }));
}

async function waitFor(h: Harness, ok: (s: RolloutStatus) => boolean, hop: Duration = '1m'): Promise<RolloutStatus> {
  for (let i = 0; i < 500; i++) {
    const s = await h.handle.query(statusQuery);
    if (ok(s)) return s;
    await server.env().sleep(hop);
  }
  throw new Error(`condition not reached; last status ${JSON.stringify(await h.handle.query(statusQuery)).slice(0, 2000)}`);
}

const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;

describe('no input wedges a rollout', () => {
  test.each([12.5, 0.01])('a fractional weight (%s%) is applied, shown, and abort restores the baseline', async (weight) => {
    const spec = makeSpec({ steps: [{ weight, bake: '1h' }, { weight: 100 }] });
    await withRollout(spec, async (h) => {
      const during = await waitFor(h, (s) => s.decisions.length >= 1);
      expect(during.weights).toEqual({ baseline: Number((100 - weight).toFixed(2)), candidate: weight });
      // The Int search attribute shows a serving candidate as at least 1%, rounded otherwise.
      const attributes = (await h.handle.describe()).typedSearchAttributes;
      expect(attributes.get(CanaryWeight)).toBe(Math.max(1, Math.round(weight)));
      const aborted = await h.handle.executeUpdate(abortUpdate, { args: [{ reason: 'fractional test' }] });
      expect(aborted.phase).toBe('rolling_back');
      const result = await h.handle.result();
      expect(result.phase).toBe('aborted');
      expect(h.router.splits()).toEqual(['100/0', `${Number((100 - weight).toFixed(2))}/${weight}`, '100/0', '100']);
    });
  });

  test('a metric source that stays down: checks hold (visible in the status), then the rollout rolls back', async () => {
    const spec = makeSpec({ analysis: { judge: 'threshold', interval: '10m', maxMetricsOutage: '30m' }, notify: { webhook: 'http://127.0.0.1:9/hooks' } });
    const metrics = new ScriptedMetrics();
    await withRollout(
      spec,
      async (h) => {
        await waitFor(h, (s) => s.decisions.length >= 1);
        metrics.failing = true;
        const holding = await waitFor(h, (s) => s.metricsOutage !== undefined);
        expect(holding.phase).toBe('progressing');
        expect(holding.weights.candidate).toBe(10);
        expect(holding.metricsOutage).toMatchObject({ failedReads: 1, lastError: expect.stringMatching(/metrics backend unavailable/) });
        expect(Date.parse(holding.metricsOutage!.rollbackAt) - Date.parse(holding.metricsOutage!.since)).toBe(30 * 60_000);
        const last = holding.decisions.at(-1)!;
        expect(last.verdict).toBe('inconclusive');
        expect(last.reasons[0]).toMatch(/metrics unavailable since .* the step holds, and the rollout rolls back .*maxMetricsOutage 30m/);
        // Said once, as a hold event, when the outage begins.
        await waitFor(h, () => h.notifier.events.some((e) => e.event.kind === 'hold'), '1s');
        expect(h.notifier.events.filter((e) => e.event.kind === 'hold').map((e) => e.event.message)).toEqual([expect.stringMatching(/metrics unavailable since/)]);

        const result = await h.handle.result();
        expect(result.phase).toBe('rolled_back');
        expect(result.outcome?.reason).toMatch(/metrics unavailable for \d+m.* at least analysis.maxMetricsOutage: .*metrics backend unavailable/);
        expect(h.router.splits()).toEqual(['100/0', '90/10', '100/0', '100']);
        // 1 passing check, then failed reads 10 minutes apart until 30 minutes had passed.
        expect(result.decisions.filter((d) => d.verdict === 'inconclusive').length).toBeGreaterThanOrEqual(3);
      },
      metrics,
    );
  });

  test('a metrics outage that ends: the step holds meanwhile, then judges again and the rollout is promoted', async () => {
    const spec = makeSpec({ analysis: { judge: 'threshold', interval: '10m', maxMetricsOutage: '1h' } });
    const metrics = new ScriptedMetrics();
    await withRollout(
      spec,
      async (h) => {
        await waitFor(h, (s) => s.decisions.length >= 2);
        metrics.failing = true;
        const holding = await waitFor(h, (s) => (s.metricsOutage?.failedReads ?? 0) >= 2);
        metrics.failing = false;
        const recovered = await waitFor(h, (s) => s.metricsOutage === undefined && s.decisions.at(-1)?.verdict === 'pass');
        expect(recovered.decisions.length).toBeGreaterThan(holding.decisions.length);
        const result = await h.handle.result();
        expect(result.phase).toBe('promoted');
        // The outage's checks were inconclusive (never a pass); the step ended on a passing check.
        const atTen = result.decisions.filter((d) => d.weight === 10);
        expect(atTen.filter((d) => d.verdict === 'inconclusive').length).toBeGreaterThanOrEqual(2);
        expect(atTen.at(-1)!.verdict).toBe('pass');
      },
      metrics,
    );
  });

  test('bake time is elapsed time: slow checks do not stretch a step', async () => {
    // Each read fails 4 attempts first (retries after 1+2+4+8 s): every check takes ~15 s.
    const spec = makeSpec({ steps: [{ weight: 10, bake: '3m' }, { weight: 100 }], analysis: { judge: 'threshold', interval: '30s' } });
    const metrics = new ScriptedMetrics();
    metrics.failuresPerRead = 4;
    await withRollout(
      spec,
      async (h) => {
        const result = await h.handle.result();
        expect(result.phase).toBe('promoted');
        const checks = result.decisions.filter((d) => d.step === 0);
        expect(checks).toHaveLength(6);
        // Counting nominal intervals, the step took 6 × (30 s + 15 s) = 270 s; elapsed, 3 min plus one check.
        const stepSeconds = seconds(result.startedAt, checks.at(-1)!.at);
        expect(stepSeconds).toBeGreaterThanOrEqual(180);
        expect(stepSeconds).toBeLessThan(215);
      },
      metrics,
    );
  });

  test('the status query pages decisions: newest first page, a cursor to older ones', async () => {
    const spec = makeSpec();
    await withRollout(spec, async (h) => {
      await waitFor(h, (s) => s.decisions.length >= 5);
      const all = await h.handle.query(statusQuery);
      const newest = await h.handle.query(statusQuery, { limit: 2 });
      expect(newest.decisions.map((d) => d.seq)).toEqual(all.decisions.slice(-2).map((d) => d.seq));
      expect(newest.decisionPage).toMatchObject({ total: all.decisions.length, kept: all.decisions.length, nextBefore: newest.decisions[0]!.seq });
      const older = await h.handle.query(statusQuery, { limit: 2, before: newest.decisionPage.nextBefore });
      expect(older.decisions.map((d) => d.seq)).toEqual(all.decisions.slice(-4, -2).map((d) => d.seq));
      // Nonsense from a hand-made query is read as "no page", never a failed query.
      const odd = await h.handle.query(statusQuery, { limit: -3, before: 'x' as unknown as number });
      expect(odd.decisions).toHaveLength(all.decisions.length);
    });
  });
});
