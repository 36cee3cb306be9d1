/** Shadow pairs (src/gateway/mirror.ts): how a pair of answers counts, and the evaluator's verdicts. */
import { PAIR_MARGIN, type ShadowSample } from '../../src/analysis/metrics';
import type { LlmOutcome } from '../../src/gateway/llm';
import { comparePair, verdictOf, type PairSide } from '../../src/gateway/mirror';

const empty = (): ShadowSample => ({ mirrored: 0, dropped: 0, pairs: 0, worse: {}, better: {}, evaluated: 0, evaluatorErrors: 0 });

const llm = (ttft: number, outputTokens: number, invalid = false, structured = false): LlmOutcome => ({
  answer: { timeToFirstTokenMs: ttft, interTokenGapsMs: [], generationMs: 0, contentWords: outputTokens, truncated: false },
  inputTokens: 10,
  outputTokens,
  structured,
  invalidStructured: invalid,
});

const side = (latencyMs: number, extra: Partial<PairSide> = {}): PairSide => ({ status: 200, error: false, latencyMs, ...extra });

function pair(baseline: PairSide, candidate: PairSide): ShadowSample {
  const shadow = empty();
  comparePair(shadow, baseline, candidate);
  return shadow;
}

it('a candidate 3× slower is worse on latency and time to first token; one faster is better', () => {
  expect(pair(side(100, { llm: llm(20, 5) }), side(300, { llm: llm(60, 5) }))).toMatchObject({ pairs: 1, worse: { latency: 1, timeToFirstToken: 1 }, better: {} });
  expect(pair(side(300, { llm: llm(60, 5) }), side(100, { llm: llm(20, 5) }))).toMatchObject({ worse: {}, better: { latency: 1, timeToFirstToken: 1 } });
});

it('within PAIR_MARGIN is a tie, counted in neither', () => {
  const shadow = pair(side(100, { llm: llm(20, 100) }), side(100 * PAIR_MARGIN * 0.99, { llm: llm(20 / (PAIR_MARGIN * 0.99), 105) }));
  expect(shadow).toMatchObject({ pairs: 1, worse: {}, better: {} });
});

it('more output tokens are worse, fewer better', () => {
  expect(pair(side(100, { llm: llm(20, 10) }), side(100, { llm: llm(20, 30) })).worse).toEqual({ outputTokens: 1 });
  expect(pair(side(100, { llm: llm(20, 30) }), side(100, { llm: llm(20, 10) })).better).toEqual({ outputTokens: 1 });
});

it('errors: one side failed counts for the other; both failed counts in neither, and nothing else is compared', () => {
  expect(pair(side(100), side(10, { status: 503, error: true }))).toMatchObject({ pairs: 1, worse: { errors: 1 }, better: {} });
  expect(pair(side(10, { status: 502, error: true }), side(100))).toMatchObject({ worse: {}, better: { errors: 1 } });
  expect(pair(side(10, { status: 502, error: true }), side(500, { status: 500, error: true }))).toMatchObject({ pairs: 1, worse: {}, better: {} });
});

it('structured output that parses on one side only', () => {
  expect(pair(side(100, { llm: llm(20, 5, false, true) }), side(100, { llm: llm(20, 5, true, true) })).worse).toEqual({ invalidOutput: 1 });
  expect(pair(side(100, { llm: llm(20, 5, true, true) }), side(100, { llm: llm(20, 5, false, true) })).better).toEqual({ invalidOutput: 1 });
  expect(pair(side(100, { llm: llm(20, 5, true, true) }), side(100, { llm: llm(20, 5, true, true) }))).toMatchObject({ worse: {}, better: {} });
});

it("an evaluator's verdict or score", () => {
  expect(verdictOf({ verdict: 'worse' })).toBe('worse');
  expect(verdictOf({ verdict: 'same' })).toBe('same');
  expect(verdictOf({ score: 0.3 })).toBe('better');
  expect(verdictOf({ score: -2 })).toBe('worse');
  expect(verdictOf({ score: 0 })).toBe('same');
  expect(verdictOf({ verdict: 'great' })).toBeUndefined();
  expect(verdictOf({ score: 'high' })).toBeUndefined();
  expect(verdictOf(null)).toBeUndefined();
});
