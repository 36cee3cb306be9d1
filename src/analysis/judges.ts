/**
 * The judge a spec asks for (`analysis.judge`), built from its options: the workflow and the
 * judge benchmark both take theirs from here.
 */
import type { AnalysisSpec } from '../spec/schema';
import type { Judge } from './judge';
import { createSequentialJudge } from './sequential';
import { thresholdJudge } from './threshold-judge';

export function judgeFor(analysis: AnalysisSpec): Judge<unknown> {
  if (analysis.judge === 'threshold') return thresholdJudge as Judge<unknown>;
  return createSequentialJudge(analysis.sequential ?? {}) as Judge<unknown>;
}
