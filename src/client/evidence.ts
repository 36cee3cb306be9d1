/**
 * A decision's `evidence` (the sequential judge's report, src/analysis/sequential) read back by
 * clients, defensively — it is data from the wire: per metric (errors, latency, time to first
 * byte) the e-value against the level that rolls back, the bound readiness rests on, ready or not.
 */
import { GATE_METRIC_NAMES, GATE_METRICS, type GateMetricName } from '../analysis/gate-metrics';
import type { MetricReport } from '../analysis/sequential';

/** Every gate metric of the table, in its order; a decision reports the ones its rollout tests. */
export const METRICS = GATE_METRIC_NAMES;
export type MetricName = GateMetricName;

export interface MetricEvidence {
  metric: MetricName;
  label: string;
  /** The e-value for "the candidate is worse than its tolerance"; the rollout rolls back at `rollbackAt`. */
  eValue: number;
  rollbackAt: number;
  /** Bounded below its tolerance: what going beyond 25% needs. */
  ready: boolean;
  /** Latency / TTFB: the boundary is not fixed yet (too few baseline requests): nothing is tested. */
  calibrating: boolean;
  /** The bound readiness rests on, in words: `ratio ≤ 1.945`, `ratio unbounded`, `rate ≤ 0.93%`. */
  bound: string;
  /** The tolerance (ratio) the metric is held to. */
  tolerance?: number;
}

/** The sequential judge's per-metric evidence of a decision (undefined for another judge, or none). */
export function metricEvidence(evidence: Record<string, unknown> | undefined): MetricEvidence[] | undefined {
  if (!evidence || evidence.judge !== 'sequential') return undefined;
  const out: MetricEvidence[] = [];
  for (const metric of METRICS) {
    const m = evidence[metric] as Partial<MetricReport> | undefined;
    if (!m || typeof m !== 'object' || !m.tested) continue;
    const calibrating = m.boundaryMs === null || m.unit === null;
    const bound =
      GATE_METRICS[metric].test === 'rate' && m.upperBound === null && typeof m.errorRateUpperBound === 'number'
        ? `rate ≤ ${(m.errorRateUpperBound * 100).toFixed(2)}%`
        : m.upperBound === null || m.upperBound === undefined
          ? 'ratio unbounded'
          : `ratio ≤ ${m.upperBound}`;
    out.push({
      metric,
      label: GATE_METRICS[metric].short,
      eValue: typeof m.eValue === 'number' ? m.eValue : Number.NaN,
      rollbackAt: typeof m.rollbackAt === 'number' ? m.rollbackAt : Number.NaN,
      ready: m.ready === true,
      calibrating,
      bound,
      ...(typeof m.r0 === 'number' ? { tolerance: m.r0 } : {}),
    });
  }
  return out;
}
