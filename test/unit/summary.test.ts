import { decisionSummary } from '../../src/workflows/summary';
import type { Decision } from '../../src/workflows/status';

const versions = { baseline: 'v2', candidate: 'v3' };
const metrics = (candidateErrors: number, baselineErrors: number): Decision['metrics'] => ({
  baseline: { requests: 1000, errors: baselineErrors, errorRate: baselineErrors / 1000, latencyP95Ms: 410 },
  candidate: { requests: 1000, errors: candidateErrors, errorRate: candidateErrors / 1000, latencyP95Ms: 415.4 },
});
const report = (over: Record<string, unknown>) => ({ tested: true, eValue: 1, rollbackAt: 166.7, ready: false, r0: 1.2, candidate: { events: 0, requests: 1000 }, baseline: { events: 0, requests: 1000 }, ...over });
const base = (over: Partial<Decision>): Omit<Decision, 'seq' | 'summary'> => ({ at: 't', step: 1, weight: 10, verdict: 'pass', reasons: ['fine.'], metrics: metrics(9, 10), failedChecks: 0, ...over });

describe('decision summaries: plain words first', () => {
  test('a rollback names the failing metric, the figures and the tolerance', () => {
    const evidence = { errors: report({ eValue: 300, candidate: { events: 87, requests: 1000 }, baseline: { events: 0, requests: 9000 } }), latency: report({}) };
    const line = decisionSummary(versions, base({ verdict: 'fail', metrics: metrics(87, 0), evidence, then: { action: 'rollback', reason: 'x' } }), { weight: 25, approval: false });
    expect(line).toBe('v3 at 10%: 8.7% errors vs 0.0% on v2 — worse than the 1.2× tolerance allows: rolling back');
  });

  test('a rollback on an SLO says so', () => {
    const evidence = { errors: report({}), slo: { share: 0.2, latencyP95: null, errorRate: { limit: 0.01, nullRate: 0.01, events: 18, requests: 469, observedRate: 0.0384, eValue: 1e4, alpha: 0.002, rollbackAt: 500, breached: true, testable: true } } };
    expect(decisionSummary(versions, base({ verdict: 'fail', evidence, then: { action: 'rollback', reason: 'x' } }), { weight: 25, approval: false })).toBe(
      'v3 at 10%: 3.8% errors (18/469) — credibly above the SLO maxErrorRate 1.0%: rolling back',
    );
  });

  test('a rollback the judge cannot attribute quotes its first reason', () => {
    expect(decisionSummary(versions, base({ verdict: 'fail', reasons: ['candidate error rate 9.00% is above maxErrorRate 5.00%'], then: { action: 'rollback', reason: 'x' } }), { weight: 25, approval: false })).toBe(
      'v3 at 10%: candidate error rate 9.00% is above maxErrorRate 5.00%: rolling back',
    );
  });

  test('a step that ends, one that bakes, one that waits', () => {
    const ready = { errors: report({ ready: true }), latency: report({ ready: true }) };
    expect(decisionSummary(versions, base({ evidence: ready, then: { action: 'end', reason: 'ready' } }), { weight: 25, approval: false })).toBe(
      'v3 at 10%: 0.9% errors vs 1.0% on v2, p95 415 ms vs 410 ms (1000 requests) — bounded within tolerance: next step 25%',
    );
    expect(decisionSummary(versions, base({ then: { action: 'end', reason: 'baked' } }), { weight: 100, approval: false })).toMatch(/— no regression seen: promoting to 100%$/);
    expect(decisionSummary(versions, base({ then: { action: 'bake' } }), { weight: 25, approval: false })).toMatch(/— no regression seen so far: baking$/);
    expect(decisionSummary(versions, base({ then: { action: 'end', reason: 'baked' } }), { weight: 100, approval: true })).toMatch(/— no regression seen: waiting for approval$/);
    const waiting = { reason: 'needs_evidence' as const, message: 'm', estimate: { candidateRequests: 2300, seconds: 360 } };
    expect(decisionSummary(versions, base({ then: { action: 'hold' }, waiting }), { weight: 50, approval: false })).toMatch(/— not yet enough evidence to go on: holding for about 2300 more candidate requests, about 6m$/);
    const thin = { reason: 'thin_traffic' as const, message: 'm' };
    expect(decisionSummary(versions, base({ verdict: 'inconclusive', metrics: { ...metrics(0, 0), candidate: { requests: 0, errors: 0, errorRate: 0 } }, then: { action: 'hold' }, waiting: thin }), { weight: 50, approval: false })).toBe(
      'v3 at 10%: no candidate traffic measured — too little traffic to judge: holding',
    );
  });
});
