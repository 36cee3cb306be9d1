/** The `npm start` progress printer: one line per change, and the demo specs are valid. */
import { createSequentialJudge } from '../../src/analysis/sequential';
import { demoSpecs, describeChanges, evidenceLine } from '../../src/demo/show';
import { parseRolloutSpec } from '../../src/spec';
import { newRolloutState, statusOf } from '../../src/workflows/state';
import { reasonsText, type RolloutStatus } from '../../src/workflows/status';
import { makeSpec } from '../helpers/specs';

const urls = { v1: 'http://127.0.0.1:9001', v2: 'http://127.0.0.1:9002', v3: 'http://127.0.0.1:9003' };

function statusAt(change: (s: RolloutStatus) => void = () => undefined): RolloutStatus {
  const parsed = parseRolloutSpec(demoSpecs('chat', urls)[0]);
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
  const [first, second] = demoSpecs('chat', urls);
  expect([first.baseline.version, first.candidate.version, second.baseline.version, second.candidate.version]).toEqual(['v1', 'v2', 'v2', 'v3']);
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
