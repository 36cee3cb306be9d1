/**
 * The sequential judge (anytime-valid, baseline-relative, with SLO guardrails). Workflow-safe: no zod, no I/O.
 * The zod fragment for `analysis.sequential` is in ./schema (import it from spec code only).
 */
export { createSequentialJudge, initialSequentialState, upgradeState, SEQUENTIAL_JUDGE_NAME } from './judge';
export type { SequentialState, ExceedanceState, GateProcess, ShadowState, MetricName, MetricReport, SloReport, SloMetricReport } from './judge';
export { P95_EXCEEDANCE, SLO_FACTORS, rateAboveLogE, sloBoundary } from './slo';
export type { SloState, SloProcess, SloName } from './slo';
export { DEFAULT_SEQUENTIAL_OPTIONS, resolveOptions } from './options';
export type { SequentialJudgeOptions, SequentialJudgeOptionsInput } from './options';
export type { RatioEvidence } from './ratio-test';
