/**
 * The LLM gate metrics of the table (src/analysis/gate-metrics.ts) through the sequential judge:
 * for each, identical versions hold (no false rollback over a long run) and a 2× regression is
 * caught with the metric named in plain words; a shadow step's paired tests likewise.
 */
import type { JudgeInput } from '../../src/analysis/judge';
import { GATE_METRICS, type GateMetricName } from '../../src/analysis/gate-metrics';
import { emptyHistogram, LATENCY_BUCKETS_MS, PAIRED_METRICS, type Histogram, type ShadowSample, type VersionMetrics } from '../../src/analysis/metrics';
import { createSequentialJudge, upgradeState, type SequentialState } from '../../src/analysis/sequential';
import { binomial, multinomial, normal, poisson, rng, type Random } from '../../bench/judge/random';
import { analysisOf } from '../helpers/specs';

interface Knobs {
  ttft: number;
  itl: number;
  tokens: number;
  truncation: number;
  invalid: number;
}
const SAME: Knobs = { ttft: 1, itl: 1, tokens: 1, truncation: 1, invalid: 1 };

/** Per-bucket probabilities of lognormal(median, 0.5). */
function buckets(medianMs: number): number[] {
  const cdf = LATENCY_BUCKETS_MS.map((b) => normalCdf((Math.log(b) - Math.log(medianMs)) / 0.5));
  return [...cdf.map((c, i) => c - (i === 0 ? 0 : cdf[i - 1]!)), 1 - cdf[cdf.length - 1]!];
}
function normalCdf(x: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const d = 0.3989422804 * Math.exp((-x * x) / 2);
  const p = d * t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  return x > 0 ? 1 - p : p;
}
const histogram = (r: Random, n: number, medianMs: number): Histogram => ({ boundsMs: [...LATENCY_BUCKETS_MS], counts: multinomial(r, n, buckets(medianMs)) });

/** One version's interval of LLM traffic: n requests, answers of ~200 tokens (lognormal σ 0.6). */
function llmVersion(r: Random, n: number, k: Knobs): VersionMetrics {
  let outSum = 0;
  let outSq = 0;
  let inSum = 0;
  let inSq = 0;
  let inOut = 0;
  for (let i = 0; i < n; i++) {
    const out = Math.max(1, Math.round(200 * k.tokens * Math.exp(0.6 * normal(r))));
    const input = Math.max(1, Math.round(300 * Math.exp(0.4 * normal(r))));
    outSum += out;
    outSq += out * out;
    inSum += input;
    inSq += input * input;
    inOut += input * out;
  }
  const structured = binomial(r, n, 0.3);
  return {
    requests: n,
    errors: poisson(r, n * 0.005),
    latency: histogram(r, n, 800),
    timeToFirstToken: histogram(r, n, 120 * k.ttft),
    interTokenLatency: histogram(r, n, 20 * k.itl),
    llm: {
      requests: n,
      inputTokens: { sum: inSum, sumSquares: inSq },
      outputTokens: { sum: outSum, sumSquares: outSq },
      inputOutputSum: inOut,
      generationSeconds: outSum * 0.02,
      truncated: binomial(r, n, Math.min(1, 0.03 * k.truncation)),
      structured,
      invalidStructured: binomial(r, structured, Math.min(1, 0.03 * k.invalid)),
    },
  };
}

const PRICING = { inputPer1M: 1, outputPer1M: 4 };

/** Runs checks at 10% until a failure or `checks`; returns the failing check's reasons, if any. */
function run(metric: GateMetricName, candidate: Knobs, seed: number, checks = 40): { failedAt: number | null; reasons: string[]; state: SequentialState } {
  const judge = createSequentialJudge();
  const analysis = analysisOf({ metrics: { errors: {}, [metric]: {} } });
  const r = rng(seed);
  let state = judge.initialState();
  for (let k = 0; k < checks; k++) {
    const input: JudgeInput = {
      analysis,
      candidateWeight: 10,
      interval: { baseline: llmVersion(r, 900, SAME), candidate: llmVersion(r, 100, candidate) },
      pricing: { baseline: PRICING, candidate: PRICING },
    };
    const j = judge.judge(input, state);
    state = j.state;
    if (j.verdict === 'fail') return { failedAt: k, reasons: j.reasons, state };
  }
  return { failedAt: null, reasons: [], state };
}

const REGRESSION: Record<Exclude<GateMetricName, 'errors' | 'latency' | 'ttfb'>, Partial<Knobs>> = {
  ttft: { ttft: 2 },
  interTokenLatency: { itl: 2 },
  outputTokens: { tokens: 2 },
  cost: { tokens: 2 },
  truncation: { truncation: 2 },
  invalidOutput: { invalid: 2 },
};

describe('LLM gate metrics', () => {
  for (const [metric, knobs] of Object.entries(REGRESSION) as Array<[keyof typeof REGRESSION, Partial<Knobs>]>) {
    const label = GATE_METRICS[metric].label;
    it(`${metric}: identical versions hold; 2× is rolled back naming ${label}`, () => {
      for (const seed of [1, 2, 3]) {
        const aa = run(metric, SAME, seed);
        expect(aa.failedAt).toBeNull();
        expect(aa.state.alphas).toHaveProperty(metric);
      }
      const ab = run(metric, { ...SAME, ...knobs }, 11, 80);
      expect(ab.failedAt).not.toBeNull();
      expect(ab.reasons.join(' ')).toContain(`${label}:`);
      expect(ab.reasons.join(' ')).toMatch(/reached/);
    });
  }

  it('tests exactly what analysis.metrics lists, with its tolerance', () => {
    const judge = createSequentialJudge();
    const r = rng(5);
    const analysis = analysisOf({ metrics: { ttft: { tolerance: 1.5 } } });
    const j = judge.judge({ analysis, candidateWeight: 10, interval: { baseline: llmVersion(r, 900, SAME), candidate: llmVersion(r, 100, SAME) } }, judge.initialState());
    expect(Object.keys(j.state.alphas!)).toEqual(['ttft']);
    expect(j.state.alphas!.ttft).toBeCloseTo(0.01, 10);
    expect(j.state.processes.ttft!.evidence.r0).toBe(1.5);
    expect((j.evidence as Record<string, { label: string }>).ttft!.label).toBe('time to first token');
  });

  it('holds, naming the metric, when a listed metric is not measured', () => {
    const judge = createSequentialJudge();
    const analysis = analysisOf({ metrics: { errors: {}, outputTokens: {} } });
    const plain = (n: number): VersionMetrics => ({ requests: n, errors: 0, latency: emptyHistogram() });
    const j = judge.judge({ analysis, candidateWeight: 10, interval: { baseline: plain(900), candidate: plain(100) } }, judge.initialState());
    expect(j.verdict).toBe('inconclusive');
    expect(j.wait?.reason).toBe('metrics_missing');
    expect(j.reasons.join(' ')).toMatch(/output tokens per request: it is not measured/);
  });

  it('keeps the default set (errors, latency, TTFB when measured) without analysis.metrics', () => {
    const judge = createSequentialJudge();
    const r = rng(9);
    const j = judge.judge({ analysis: analysisOf(), candidateWeight: 10, interval: { baseline: llmVersion(r, 900, SAME), candidate: llmVersion(r, 100, SAME) } }, judge.initialState());
    // No TTFB histogram here: its share goes to latency, as before the table.
    expect(j.state.alphas).toEqual({ errors: 0.006, latency: expect.closeTo(0.004, 12) });
  });

  it('reads a state written before the table (version 1) as the same evidence', () => {
    const judge = createSequentialJudge();
    const r = rng(3);
    const interval = { baseline: llmVersion(r, 900, SAME), candidate: llmVersion(r, 100, SAME) };
    const now = judge.judge({ analysis: analysisOf(), candidateWeight: 10, interval }, judge.initialState()).state;
    const { processes, alphas, version: _v, ...rest } = now;
    const v1 = { ...rest, version: 1, alphas: { errors: alphas!.errors, latency: alphas!.latency, ttfb: 0 }, errors: processes.errors!.evidence, latency: processes.latency, ttfb: processes.ttfb };
    expect(upgradeState(v1 as never)).toEqual(now);
    const next = { baseline: llmVersion(r, 900, SAME), candidate: llmVersion(r, 100, SAME) };
    expect(judge.judge({ analysis: analysisOf(), candidateWeight: 10, interval: next }, v1 as never)).toEqual(judge.judge({ analysis: analysisOf(), candidateWeight: 10, interval: next }, now));
  });
});

describe('shadow step: paired tests on mirrored pairs', () => {
  /** An interval of n pairs where the candidate is worse with probability pWorse and better with pBetter per metric. */
  function pairs(r: Random, n: number, pWorse: number, pBetter: number): ShadowSample {
    const counts = (p: number) => Object.fromEntries(PAIRED_METRICS.map((m) => [m, binomial(r, n, p)]));
    return { mirrored: n, dropped: 0, pairs: n, worse: counts(pWorse), better: counts(pBetter), evaluated: n, evaluatorErrors: 0 };
  }
  const baselineOnly = (n: number): VersionMetrics => ({ requests: n, errors: 0, latency: emptyHistogram() });

  function shadowRun(pWorse: number, pBetter: number, seed: number, checks = 30, dropped = 0) {
    const judge = createSequentialJudge();
    const analysis = analysisOf({ evaluator: { url: 'http://127.0.0.1:1/evaluate' } as never });
    const r = rng(seed);
    let state = judge.initialState();
    let last;
    for (let k = 0; k < checks; k++) {
      const shadow = { ...pairs(r, 100, pWorse, pBetter), dropped };
      last = judge.judge({ analysis, candidateWeight: 0, shadow: true, interval: { baseline: baselineOnly(1000), candidate: baselineOnly(0), shadow } }, state);
      state = last.state;
      if (last.verdict === 'fail') return { failedAt: k, last };
    }
    return { failedAt: null, last: last! };
  }

  it('identical versions pass (ties and even splits), with the evaluator verdict among the tests', () => {
    for (const seed of [1, 2, 3]) {
      const { failedAt, last } = shadowRun(0.2, 0.2, seed);
      expect(failedAt).toBeNull();
      expect(last.verdict).toBe('pass');
      expect(Object.keys(last.state.shadow!.alphas).sort()).toEqual(['errors', 'latency', 'verdict']);
      expect(last.reasons[0]).toMatch(/^shadow: \d+ mirrored pairs compared \(users saw only the baseline's answers\)/);
    }
  });

  it('a candidate worse on most pairs is rolled back, naming the paired metric', () => {
    const { failedAt, last } = shadowRun(0.6, 0.1, 7);
    expect(failedAt).not.toBeNull();
    expect(failedAt!).toBeLessThan(5);
    expect(last.reasons.join(' ')).toMatch(/on the same requests: the candidate did worse in \d+ and better in \d+ of \d+ mirrored pairs/);
  });

  it('does not compare a check that dropped many mirrors (the pairs left would flatter the candidate)', () => {
    const { last } = shadowRun(0.2, 0.2, 4, 1, 50);
    expect(last.verdict).toBe('inconclusive');
    expect(last.reasons[0]).toMatch(/50 of 150 mirrored requests were dropped/);
  });

  it('takes its share of α from the live comparison that follows', () => {
    const judge = createSequentialJudge();
    const analysis = analysisOf();
    const r = rng(2);
    const shadow = judge.judge({ analysis, candidateWeight: 0, shadow: true, interval: { baseline: baselineOnly(1000), candidate: baselineOnly(0), shadow: pairs(r, 100, 0.2, 0.2) } }, judge.initialState());
    const live = judge.judge({ analysis, candidateWeight: 10, interval: { baseline: llmVersion(r, 900, SAME), candidate: llmVersion(r, 100, SAME) } }, shadow.state);
    const liveAlpha = Object.values(live.state.alphas!).reduce((s, a) => s + a, 0);
    const pairedAlpha = Object.values(live.state.shadow!.alphas).reduce((s, a) => s + a!, 0);
    expect(liveAlpha + pairedAlpha).toBeCloseTo(0.01, 12);
    expect(pairedAlpha).toBeCloseTo(0.002, 12);
  });
});

describe('gate-metric table', () => {
  it('every row has a label, a unit, a tolerance ≥ 1 and a test kind', () => {
    for (const [name, row] of Object.entries(GATE_METRICS)) {
      expect(row.label.length).toBeGreaterThan(3);
      expect(row.tolerance).toBeGreaterThanOrEqual(1);
      expect(['rate', 'exceedance', 'mean']).toContain(row.test);
      if (row.test !== 'mean') expect((row as { events?: string }).events).toBeTruthy();
      expect(name).toMatch(/^[a-zA-Z]+$/);
    }
  });
});
