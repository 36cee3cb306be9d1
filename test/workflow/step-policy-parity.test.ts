/**
 * The judge benchmark measures the policy the product runs: the same simulated traffic (the
 * bench's simulator) drives the rollout workflow on the time-skipping server and the bench's
 * loop (bench/judge/rollout.ts), and both make the same decisions, check by check — step,
 * weight, verdict and what the step policy made of it — and end the same way.
 */
import type { MetricsSample } from '../../src/analysis/metrics';
import type { MetricReading, MetricSource } from '../../src/activities/types';
import { JUDGES } from '../../bench/judge/judges';
import { BAKE, LADDER, runRollout as runBenchRollout, type CheckRecord, waitingRecord } from '../../bench/judge/rollout';
import { addSamples, emptySample, intervalAt, newRollout, type Rollout, type World } from '../../bench/judge/simulator';
import type { Decision, RolloutStatus } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter } from '../helpers/adapters';
import { makeSpec } from '../helpers/specs';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';

const server = useTimeSkippingServer();

/**
 * The simulator as a metric source: each read adds the interval just served at the weight the
 * router last applied; a missing scrape reports the previous cumulative figures (the next read
 * catches up), as the bench carries a missing interval into the next one.
 */
class SimulatedMetrics implements MetricSource {
  private reads = 0;
  private served: MetricsSample = emptySample();
  private reported: MetricsSample = emptySample();
  private readonly cache = new Map<string, MetricsSample>();

  constructor(
    private readonly rollout: Rollout,
    private readonly router: RecordingRouter,
  ) {}

  async read(): Promise<MetricReading> {
    if (this.reads > 0) {
      const k = this.reads - 1;
      const route = this.router.routes[this.router.routes.length - 1];
      const weight = route?.versions[1]?.weight ?? 0;
      this.served = addSamples(this.served, intervalAt(this.rollout, k, weight, this.cache));
      if (!this.rollout.missing[k]) this.reported = this.served;
    }
    this.reads += 1;
    return { kind: 'cumulative', sample: structuredClone(this.reported) };
  }
}

const nuisance = { candidatePods: 3, podErrorSpread: 0.1, podLatencySpread: 0.03, shock: 0.15, missing: 0.05 };
const world = (errorFactor: number, latencyFactor = 1, onset = 0): World => ({ rps: 100, baseErrorRate: 0.01, nuisance, errorFactor, latencyFactor, onset });

const spec = (target: string) =>
  makeSpec({
    target,
    steps: [...LADDER.map((weight) => ({ weight, bake: `${(BAKE * 30) / 60}m` })), { weight: 100 }],
    analysis: { interval: '30s' },
  });

const seen = (d: Pick<Decision, 'step' | 'weight' | 'verdict' | 'then' | 'waiting'>): CheckRecord => {
  const waiting = waitingRecord(d.waiting);
  return { step: d.step, weight: d.weight, verdict: d.verdict, action: d.then!.action, ...(waiting ? { waiting } : {}) };
};

describe('the step policy: the workflow and the judge benchmark decide alike', () => {
  test.each([
    ['a healthy candidate (A/A), promoted', world(1), 11, 'promoted'],
    ['errors ×2 from the start, rolled back', world(2), 12, 'rolled_back'],
    ['p95 ×1.25 from interval 30, rolled back', world(1, 1.25, 30), 13, 'rolled_back'],
  ] as const)('%s', async (_name, w, seed, ending) => {
    const target = `parity-${seed}`;
    const rolloutSpec = spec(target);
    const simulated = newRollout(w, seed, 240);

    const trace: CheckRecord[] = [];
    const bench = runBenchRollout(JUDGES[0]!, simulated, { kind: 'ladder' }, rolloutSpec.analysis, new Map(), trace);
    expect(bench.promoted ? 'promoted' : bench.rolledBack ? 'rolled_back' : 'held').toBe(ending);

    const router = new RecordingRouter();
    const notifier = new RecordingNotifier();
    const withWebhook = { ...rolloutSpec, notify: { webhook: 'http://127.0.0.1:9/decisions' } };
    const final: RolloutStatus = await runRollout(server, withWebhook, { router, metrics: new SimulatedMetrics(simulated, router), notifier }, (handle) => handle.result());
    expect(final.phase).toBe(ending);

    const decisions = notifier.events
      .filter((e) => e.event.kind === 'decision')
      .map((e) => e.event.data as Decision)
      .sort((a, b) => a.seq - b.seq);
    expect(decisions.map(seen)).toEqual(trace);
    expect(decisions.every((d) => typeof d.summary === 'string' && d.summary.startsWith('v2 at '))).toBe(true);
    // Real traffic moved through the ladder in both, step by step.
    expect(new Set(trace.map((t) => t.weight)).size).toBeGreaterThan(1);
  });
});
