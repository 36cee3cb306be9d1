/**
 * The `npm start` progress printer: one line per change; the demo specs are valid, and the third
 * rollout's models (v2 → v4, 2× time to first token) fail it on time to first token alone.
 */
import { judgeFor } from '../../src/analysis/judges';
import { LATENCY_BUCKETS_MS, emptyHistogram, type Histogram, type VersionMetrics } from '../../src/analysis/metrics';
import { createSequentialJudge } from '../../src/analysis/sequential';
import { DEMO_MODELS, demoSpecs, describeChanges, evidenceLine } from '../../src/demo/show';
import { parseRolloutSpec } from '../../src/spec';
import { newRolloutState, statusOf } from '../../src/workflows/state';
import { reasonsText, type RolloutStatus } from '../../src/workflows/status';
import { makeSpec } from '../helpers/specs';

const urls = { v1: 'http://127.0.0.1:9001', v2: 'http://127.0.0.1:9002', v3: 'http://127.0.0.1:9003', v4: 'http://127.0.0.1:9004' };

function statusAt(change: (s: RolloutStatus) => void = () => undefined, which = 0): RolloutStatus {
  const parsed = parseRolloutSpec(demoSpecs('chat', urls)[which]);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const status = statusOf(newRolloutState('rollout-chat', parsed.spec, null, '2026-01-01T00:00:00.000Z'));
  change(status);
  return status;
}

it('builds valid demo specs at any scale', () => {
  for (const scale of [1, 0.3, 0.05]) {
    for (const spec of demoSpecs('chat', urls, { scale, rate: 30 })) {
      const parsed = parseRolloutSpec(spec);
      expect(parsed.ok).toBe(true);
    }
  }
  const specs = demoSpecs('chat', urls);
  expect(specs.map((s) => `${s.baseline.version} → ${s.candidate.version}`)).toEqual(['v1 → v2', 'v2 → v3', 'v2 → v4']);
  // Only the third lists its gate metrics: exactly errors, latency and time to first token.
  expect(specs.map((s) => s.analysis?.metrics)).toEqual([undefined, undefined, { errors: {}, latency: {}, ttft: {} }]);
  expect(DEMO_MODELS.map((m) => m.version)).toEqual(['v1', 'v2', 'v3', 'v4']);
});

/** A seeded lognormal sampler (as the demo model server draws its delays). */
function sampler(seed: number): (median: number, sigma: number) => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  return (median, sigma) => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

function observe(h: Histogram, ms: number): void {
  const i = LATENCY_BUCKETS_MS.findIndex((edge) => ms <= edge);
  h.counts[i < 0 ? LATENCY_BUCKETS_MS.length : i]! += 1;
}

/**
 * `n` streamed answers of a demo model as the gateway times them: 16 tokens (the traffic's
 * max_tokens), the first after ttftMs, then 15 gaps of interTokenMs; each timer ~1 ms late.
 */
function streamed(version: 'v2' | 'v4', n: number, draw: (median: number, sigma: number) => number): VersionMetrics {
  const m = DEMO_MODELS.find((x) => x.version === version)!;
  const sigma = m.latencySpread!;
  const latency = emptyHistogram();
  const ttft = emptyHistogram();
  for (let k = 0; k < n; k++) {
    const first = draw(m.ttftMs!, sigma) + 1;
    let end = first;
    for (let g = 0; g < 15; g++) end += draw(m.interTokenMs!, sigma) + 1;
    observe(ttft, first);
    observe(latency, end);
  }
  return { requests: n, errors: 0, latency, timeToFirstToken: ttft };
}

it("rolls the third rollout's candidate back on time to first token alone, at the demo's traffic", () => {
  const parsed = parseRolloutSpec(demoSpecs('chat', urls, { scale: 1, rate: 30 })[2]);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const { analysis } = parsed.spec;
  const judge = judgeFor(analysis);
  const draw = sampler(7);
  let state = judge.initialState();
  // 30 req/s, a check every 5 s, 20% to the candidate: 30 candidate and 120 baseline requests.
  for (let check = 1; check <= 6; check++) {
    const j = judge.judge({ analysis, candidateWeight: 20, interval: { candidate: streamed('v4', 30, draw), baseline: streamed('v2', 120, draw) } }, state);
    state = j.state;
    const evidence = j.evidence as Record<string, { eValue?: number; rollbackAt?: number }>;
    // End-to-end latency never leans toward a regression: its evidence stays far below its level.
    expect(evidence.latency!.eValue ?? 1).toBeLessThan(10);
    if (j.verdict === 'fail') {
      expect(check).toBeLessThanOrEqual(4);
      expect(reasonsText(j.reasons)).toMatch(/^time to first token: /);
      expect(reasonsText(j.reasons)).not.toMatch(/latency:|error rate:/);
      return;
    }
  }
  throw new Error('the judge never failed v4');
});

it('prints the phase and weights once, then only what changed', () => {
  const first = statusAt();
  expect(describeChanges(first, { seenDecisions: 0 })).toEqual(['step 1/4 · weights v1 100% / v2 0%', 'phase progressing']);
  const seen = { phase: 'progressing', stepKey: '100|0', seenDecisions: 0 };
  expect(describeChanges(first, seen)).toEqual([]);
  // The step index moves before the weights: nothing to print until they change.
  expect(describeChanges(statusAt((s) => (s.step.index = 1)), seen)).toEqual([]);

  const checked = statusAt((s) => {
    s.step.index = 1;
    s.weights = { baseline: 75, candidate: 25 };
    s.decisions.push({
      seq: 1,
      at: '2026-01-01T00:00:05.000Z',
      step: 1,
      weight: 25,
      verdict: 'fail',
      reasons: ['errors: candidate 3/30 (10.00%) vs baseline 0/90 (0.00%); the e-value 210 reached 166.7 (α = 0.006)'],
      metrics: {
        baseline: { requests: 90, errors: 0, errorRate: 0, latencyP95Ms: 70 },
        candidate: { requests: 30, errors: 3, errorRate: 0.1, latencyP95Ms: 72.5 },
      },
      failedChecks: 1,
    });
  });
  expect(describeChanges(checked, seen)).toEqual([
    'check 1 · step 2 @25% · FAIL · v2 30 req, 10.0% err, p95 72.5 ms | v1 90 req, 0.0% err, p95 70 ms — errors: candidate 3/30 (10.00%) vs baseline 0/90 (0.00%); the e-value 210 reached 166.7 (α = 0.006)',
    'step 2/4 · weights v1 75% / v2 25%',
  ]);
  // A rollout gated on time to first token (the third) shows each side's TTFT p95 too.
  const metrics = {
    baseline: { requests: 120, errors: 0, errorRate: 0, latencyP95Ms: 300, timeToFirstTokenP95Ms: 142 },
    candidate: { requests: 30, errors: 0, errorRate: 0, latencyP95Ms: 295, timeToFirstTokenP95Ms: 246 },
  };
  const gated = statusAt((s) => s.decisions.push({ ...checked.decisions[0]!, step: 0, weight: 20, metrics }), 2);
  expect(describeChanges(gated, { phase: 'progressing', stepKey: '100|0', seenDecisions: 0 })[0]).toMatch(
    /^check 1 · step 1 @20% · FAIL · v4 30 req, 0\.0% err, p95 295 ms, TTFT p95 246 ms \| v2 120 req, 0\.0% err, p95 300 ms, TTFT p95 142 ms — /,
  );
  // The threshold judge counts failed checks up to failureLimit: the line shows the tally.
  checked.spec.analysis.judge = 'threshold';
  expect(describeChanges(checked, seen)[0]).toMatch(/ · failed 1\/2 — errors: /);
});

it('tells a passing sequential check by its evidence, one short part per metric', () => {
  const judge = createSequentialJudge();
  let state = judge.initialState();
  const analysis = makeSpec({ analysis: { judge: 'sequential', interval: '5s' } }).analysis;
  const histogram = (n: number) => ({ boundsMs: [50, 100, 200], counts: [Math.round(n * 0.6), Math.round(n * 0.3), n - Math.round(n * 0.6) - Math.round(n * 0.3), 0] });
  let evidence: Record<string, unknown> | undefined;
  for (let k = 0; k < 3; k++) {
    const j = judge.judge(
      { analysis, candidateWeight: 25, interval: { candidate: { requests: 250, errors: 0, latency: histogram(250) }, baseline: { requests: 750, errors: 0, latency: histogram(750) } } },
      state,
    );
    state = j.state;
    evidence = j.evidence;
  }
  expect(evidenceLine(evidence)).toMatch(/^errors e=1 \(rolls back at 166\.7\), rate ≤ \d+\.\d\d% · latency e=[\d.e-]+ \(rolls back at 250\), ratio (≤ [\d.]+|unbounded)( ✓)?$/);
  expect(evidenceLine({ judge: 'threshold' })).toBeUndefined();
  expect(evidenceLine(undefined)).toBeUndefined();
});

it('joins reasons: sentences with a space, bare clauses with semicolons', () => {
  expect(reasonsText(['errors: fine.', 'latency: fine.'])).toBe('errors: fine. latency: fine.');
  expect(reasonsText(['error rate 10% is above 5%', 'p95 900 ms is above 800 ms'])).toBe('error rate 10% is above 5%; p95 900 ms is above 800 ms');
  expect(reasonsText([])).toBe('');
});
