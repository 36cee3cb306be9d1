/**
 * SLO guardrails of the sequential judge (src/analysis/sequential/slo.ts): the one-sample
 * anytime-valid test, the p95 edge choice, and the judge end to end on samples.
 */
import type { JudgeInput } from '../../src/analysis/judge';
import { LATENCY_BUCKETS_MS, type Histogram, type VersionMetrics } from '../../src/analysis/metrics';
import { createSequentialJudge, type SequentialState, type SloReport } from '../../src/analysis/sequential';
import { sequentialOptionsSchema } from '../../src/analysis/sequential/schema';
import { rateAboveLogE, sloAlternatives, sloBoundary, SLO_FACTORS } from '../../src/analysis/sequential/slo';
import type { AnalysisSpec } from '../../src/spec/schema';
import { binomial, normalCdf, rng } from '../../bench/judge/random';
import { analysisOf } from '../helpers/specs';

function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

const analysis = (thresholds?: AnalysisSpec['thresholds']): AnalysisSpec => analysisOf(thresholds ? { thresholds } : {});


/** Lognormal(ln 200 ms, 0.5) latencies scaled by `factor` (p95 ≈ 455 ms × factor): n requests. */
function histogramOf(n: number, factor = 1, random?: () => number, bounds: readonly number[] = LATENCY_BUCKETS_MS): Histogram {
  const cdf = bounds.map((b) => normalCdf((Math.log(b / factor) - Math.log(200)) / 0.5));
  const probabilities = [...cdf.map((c, i) => c - (i === 0 ? 0 : cdf[i - 1]!)), 1 - cdf[cdf.length - 1]!];
  const counts = new Array(probabilities.length).fill(0) as number[];
  if (random) {
    for (let i = 0; i < n; i++) {
      const u = random();
      let j = 0;
      while (j < cdf.length && u > cdf[j]!) j++;
      counts[j]! += 1;
    }
  } else {
    const exact = probabilities.map((p) => p * n);
    exact.forEach((x, i) => (counts[i] = Math.floor(x)));
    const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
    const missing = n - counts.reduce((a, b) => a + b, 0);
    for (let k = 0; k < missing; k++) counts[order[k]![1]]! += 1;
  }
  return { boundsMs: [...bounds], counts };
}

function version(requests: number, errors: number, factor = 1, random?: () => number): VersionMetrics {
  return { requests, errors, latency: histogramOf(requests, factor, random) };
}

const input = (thresholds: AnalysisSpec['thresholds'], candidate: VersionMetrics, baseline: VersionMetrics, candidateWeight = 25): JudgeInput => ({
  analysis: analysis(thresholds),
  candidateWeight,
  interval: { candidate, baseline },
});

const sloOf = (j: { evidence?: Record<string, unknown> }) => (j.evidence as { slo: SloReport | null }).slo;

describe('one-sample e-process: "rate ≤ q" against rates above', () => {
  it('is the equal-weight mixture of f^e·((1 − f·q)/(1 − q))^{n−e} over the factors', () => {
    const q = 0.02;
    const byHand = Math.log(SLO_FACTORS.reduce((s, f) => s + Math.pow(f, 30) * Math.pow((1 - f * q) / (1 - q), 970), 0) / SLO_FACTORS.length);
    expect(rateAboveLogE(30, 1000, q)).toBeCloseTo(byHand, 10);
    // At the null rate's expected count it leans to H0; well above it, it grows.
    expect(rateAboveLogE(20, 1000, q)).toBeLessThan(0);
    expect(rateAboveLogE(60, 1000, q)).toBeGreaterThan(Math.log(1000));
    // Factors with f·q ≥ 1 are replaced by (1 + q)/2: every alternative is strictly between q and 1.
    for (const q of [0.001, 0.05, 0.3, 0.7, 0.95]) {
      for (const p1 of sloAlternatives(q)) {
        expect(p1).toBeGreaterThan(q);
        expect(p1).toBeLessThan(1);
      }
    }
    expect(Number.isFinite(rateAboveLogE(900, 1000, 0.7))).toBe(true);
  });

  it('has expectation exactly 1 at p = q and below 1 for p < q (exact binomial sums)', () => {
    const n = 80;
    for (const q of [0.02, 0.05, 0.4]) {
      for (const p of [q, q * 0.8, q * 0.5]) {
        let mean = 0;
        for (let e = 0; e <= n; e++) mean += Math.exp(logChoose(n, e) + e * Math.log(p) + (n - e) * Math.log1p(-p) + rateAboveLogE(e, n, q));
        if (p === q) expect(mean).toBeCloseTo(1, 10);
        else expect(mean).toBeLessThan(1);
      }
    }
  });

  it('q = 0: any error is a breach with certainty; no error is no evidence. q = 1 never fails', () => {
    expect(rateAboveLogE(0, 10_000, 0)).toBe(0);
    expect(rateAboveLogE(1, 10_000, 0)).toBe(Infinity);
    expect(rateAboveLogE(10_000, 10_000, 1)).toBe(0);
    expect(() => rateAboveLogE(5, 3, 0.1)).toThrow(RangeError);
  });

  it('validity: checked after every interval, false breaches at p = q and p slightly below stay ≤ α (seeded Monte Carlo)', () => {
    // α = 0.1 (large, so that an invalid test would show at this scale), q = 2%, 60 intervals of 400.
    const alpha = 0.1;
    const q = 0.02;
    const runs = 1500;
    const rates: Record<string, number> = {};
    for (const p of [q, 0.9 * q]) {
      const random = rng(p === q ? 11 : 12);
      let breached = 0;
      for (let r = 0; r < runs; r++) {
        let e = 0;
        let n = 0;
        for (let k = 0; k < 60; k++) {
          e += binomial(random, 400, p);
          n += 400;
          if (rateAboveLogE(e, n, q) >= Math.log(1 / alpha)) {
            breached++;
            break;
          }
        }
      }
      rates[`p=${p}`] = breached / runs;
    }
    console.log(`SLO e-process validity (α = ${alpha}, q = ${q}, 60 looks × 400 requests, ${runs} runs): false-breach rate ${JSON.stringify(rates)}`);
    // Ville: ≤ α. P(Binomial(1500, 0.1) ≥ 180) ≈ 0.001: 12% would be evidence of invalidity.
    expect(rates[`p=${q}`]!).toBeLessThan(0.12);
    expect(rates[`p=${0.9 * q}`]!).toBeLessThan(0.12);
    // Slightly below q it is clearly below α (the supermartingale drifts down).
    expect(rates[`p=${0.9 * q}`]!).toBeLessThan(rates[`p=${q}`]!);
  }, 60_000);

  it('power: a rate 1.5× the limit is breached within a few thousand requests at the default α share', () => {
    // The default rollout: α = 0.01, sloAlphaShare 0.2, one SLO → α = 0.002, 1/α = 500.
    const alpha = 0.002;
    const runs = 300;
    const out: Record<string, { median: number; p90: number; breached: number }> = {};
    for (const q of [0.01, 0.02, 0.05]) {
      const random = rng(Math.round(q * 1e4));
      const at: number[] = [];
      for (let r = 0; r < runs; r++) {
        let e = 0;
        let n = 0;
        for (let k = 0; k < 400; k++) {
          e += binomial(random, 250, 1.5 * q);
          n += 250;
          if (rateAboveLogE(e, n, q) >= Math.log(1 / alpha)) {
            at.push(n);
            break;
          }
        }
      }
      at.sort((a, b) => a - b);
      out[`q=${q}`] = { median: at[Math.floor(at.length / 2)]!, p90: at[Math.floor(at.length * 0.9)]!, breached: at.length / runs };
    }
    console.log(`SLO e-process power (p = 1.5q, α = ${alpha}, checked every 250 requests, ${runs} runs): requests until breached ${JSON.stringify(out)}`);
    for (const [key, { median, p90, breached }] of Object.entries(out)) {
      expect(breached).toBe(1); // every run within 100k requests
      // ≈ ln(5/α)/KL(1.5q‖q) requests: ~7.1k at 1%, ~3.5k at 2%, ~1.4k at 5%.
      const q = Number(key.slice(2));
      expect(median).toBeLessThan(140 / q);
      expect(p90).toBeLessThan(250 / q);
    }
  }, 60_000);
});

describe('p95 SLO: the bucket edge it is tested at', () => {
  const edges = [100, 125, 150, 175, 200, 250, 300];

  it('a limit on an edge uses that edge', () => {
    expect(sloBoundary(edges, 200)).toEqual({ index: 4, boundaryMs: 200 });
    expect(sloBoundary(LATENCY_BUCKETS_MS, 800)?.boundaryMs).toBe(800);
  });

  it('a limit between edges uses the next edge up (P(> b) > 5% implies P(> L) > 5%)', () => {
    expect(sloBoundary(edges, 210)).toEqual({ index: 5, boundaryMs: 250 });
    expect(sloBoundary(edges, 1)).toEqual({ index: 0, boundaryMs: 100 });
    expect(sloBoundary(LATENCY_BUCKETS_MS, 420)?.boundaryMs).toBe(500);
  });

  it('a limit above every finite edge cannot be tested', () => {
    expect(sloBoundary(edges, 301)).toBeUndefined();
    expect(sloBoundary(LATENCY_BUCKETS_MS, 100_000)).toBeUndefined();
    expect(sloBoundary([], 10)).toBeUndefined();
  });
});

describe('the sequential judge with SLO guardrails', () => {
  it('fails a candidate identical to the baseline at 3% errors against maxErrorRate 2%, citing the SLO', () => {
    const judge = createSequentialJudge();
    const random = rng(3);
    let s = judge.initialState();
    let failedAt = -1;
    let reason = '';
    for (let k = 0; k < 60 && failedAt < 0; k++) {
      const j = judge.judge(input({ maxErrorRate: 0.02 }, version(500, binomial(random, 500, 0.03)), version(1500, binomial(random, 1500, 0.03))), s);
      s = j.state;
      if (j.verdict === 'fail') {
        failedAt = k;
        reason = j.reasons.join(' ');
        const slo = sloOf(j)!;
        expect(slo.errorRate).toMatchObject({ limit: 0.02, breached: true, alpha: 0.002, rollbackAt: 500, testable: true });
        expect(slo.errorRate!.eValue).toBeGreaterThanOrEqual(500);
        // The comparison with the baseline did not see a regression: the SLO did it.
        expect((j.evidence as { errors: { eValue: number; rollbackAt: number } }).errors.eValue).toBeLessThan(100);
      } else {
        expect(j.verdict).toBe('pass');
      }
    }
    console.log(`3% errors vs maxErrorRate 2% (500 candidate requests a check): failed at check ${failedAt + 1}, ${s.slo!.errorRate!.requests} candidate requests`);
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(reason).toMatch(/^SLO analysis\.thresholds\.maxErrorRate 2%: the candidate's error rate is above it: \d+\/\d+ \(\d\.\d\d%\) since the SLO check started; the e-value [\d.e+]+ reached 1\/α = 500 \(α = 0\.002\)\.$/);
    // Sticky.
    const after = judge.judge(input({ maxErrorRate: 0.02 }, version(500, 0), version(1500, 0)), s);
    expect(after.verdict).toBe('fail');
    expect(after.reasons[0]).toMatch(/already failed: SLO analysis\.thresholds\.maxErrorRate/);
  });

  it('does not fail a candidate identical to the baseline at 1% errors against maxErrorRate 2%, over many checks', () => {
    for (const seed of [1, 2, 3]) {
      const judge = createSequentialJudge();
      const random = rng(100 + seed);
      let s = judge.initialState();
      let last: ReturnType<typeof judge.judge> | undefined;
      for (let k = 0; k < 150; k++) {
        last = judge.judge(input({ maxErrorRate: 0.02 }, version(500, binomial(random, 500, 0.01)), version(1500, binomial(random, 1500, 0.01))), s);
        expect(last.verdict).toBe('pass');
        s = last.state;
      }
      expect(sloOf(last!)!.errorRate!.requests).toBe(75_000);
      expect(sloOf(last!)!.errorRate!.eValue).toBeLessThan(1e-6); // the evidence only grows against a breach
      expect(last!.reasons.join(' ')).toMatch(/SLO error rate ≤ 2%: candidate \d+\/75000 \(\d\.\d\d%\); e-value [\d.e+-]+ below 500\./);
    }
  });

  it('judge-level validity: a candidate exactly at the SLO is failed on it at a rate ≤ its α share (seeded Monte Carlo)', () => {
    // α = 0.5 with sloAlphaShare 0.4: the SLO's α is 0.2 (large, so that a broken wiring would show).
    const runs = 200;
    const random = rng(77);
    let sloFailures = 0;
    for (let r = 0; r < runs; r++) {
      const judge = createSequentialJudge({ alpha: 0.5, sloAlphaShare: 0.4 });
      let s = judge.initialState();
      for (let k = 0; k < 30; k++) {
        const weight = k < 10 ? 25 : k < 20 ? 50 : 100; // the SLO counts at every weight
        const nB = weight === 100 ? 800 : weight === 50 ? 400 : 200;
        const nA = weight === 100 ? 0 : 800 - nB;
        const j = judge.judge(input({ maxErrorRate: 0.02 }, version(nB, binomial(random, nB, 0.02)), version(nA, binomial(random, nA, 0.02)), weight), s);
        s = j.state;
        if (j.verdict === 'fail') {
          if (/^SLO /.test(j.reasons[0]!)) sloFailures++;
          break;
        }
      }
    }
    console.log(`judge-level SLO validity (p = q = 2%, SLO α = 0.2, 30 checks, ${runs} runs): SLO failure rate ${sloFailures / runs}`);
    // Ville: ≤ 0.2 (an e-process is usually well below). P(Binomial(200, 0.2) ≥ 56) ≈ 0.004.
    expect(sloFailures).toBeLessThan(56);
  }, 60_000);

  it('the p95 SLO: fails a candidate whose p95 is above the limit even when the baseline is as slow; passes one below', () => {
    // Lognormal(ln 200, 0.5): p95 ≈ 455 ms; 8.3% of requests are slower than 400 ms, 1.4% than 600.
    const judge = createSequentialJudge();
    let s = judge.initialState();
    let failed: ReturnType<typeof judge.judge> | undefined;
    for (let k = 0; k < 30 && !failed; k++) {
      const j = judge.judge(input({ maxLatencyP95Ms: 400 }, version(500, 5), version(1500, 15)), s);
      s = j.state;
      if (j.verdict === 'fail') failed = j;
    }
    expect(failed).toBeDefined();
    expect(failed!.reasons[0]).toMatch(
      /^SLO analysis\.thresholds\.maxLatencyP95Ms 400 ms: the candidate's p95 latency is above it: \d+\/\d+ requests \(8\.\d\d%\) were slower than 400 ms, more than the 5\.00% a p95 allows; the e-value [\d.e+]+ reached 1\/α = 500/,
    );
    expect(sloOf(failed!)!.latencyP95).toMatchObject({ limit: 400, boundaryMs: 400, nullRate: 0.05, breached: true, testable: true });

    const fine = createSequentialJudge();
    let t = fine.initialState();
    const random = rng(9);
    for (let k = 0; k < 100; k++) {
      const j = fine.judge(input({ maxLatencyP95Ms: 600 }, version(500, 5, 1, random), version(1500, 15, 1, random)), t);
      expect(j.verdict).toBe('pass');
      t = j.state;
    }
    expect(t.slo!.latencyP95).toMatchObject({ boundaryMs: 600, requests: 50_000 });
  });

  it('a p95 limit between edges is tested at the next edge up (conservative: a p95 in between is not caught)', () => {
    // Limit 420 ms, true p95 ≈ 455 ms, but the next edge is 500 ms, above which only 3.3% are.
    const judge = createSequentialJudge();
    let s = judge.initialState();
    let last: ReturnType<typeof judge.judge> | undefined;
    for (let k = 0; k < 40; k++) {
      last = judge.judge(input({ maxLatencyP95Ms: 420 }, version(500, 5), version(1500, 15)), s);
      expect(last.verdict).toBe('pass');
      s = last.state;
    }
    expect(sloOf(last!)!.latencyP95).toMatchObject({ limit: 420, boundaryMs: 500, breached: false });
    expect(last!.reasons.join(' ')).toMatch(/SLO p95 ≤ 420 ms: candidate \d+\/20000 \(3\.\d\d%\) slower than 500 ms, 5\.00% allowed/);
  });

  it('a p95 limit above every edge is reported untestable, in the reasons at the first check and in evidence; it never fails', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    const notes: string[] = [];
    let last: ReturnType<typeof judge.judge> | undefined;
    for (let k = 0; k < 5; k++) {
      last = judge.judge(input({ maxLatencyP95Ms: 100_000 }, version(500, 5, 500), version(1500, 15, 500)), s);
      expect(last.verdict).not.toBe('fail');
      notes.push(last.reasons.filter((r) => /cannot be tested/.test(r)).join(''));
      s = last.state;
    }
    expect(notes[0]).toMatch(/^SLO analysis\.thresholds\.maxLatencyP95Ms 100000 ms cannot be tested: the latency histogram has no bucket edge at or above it \(the last is 60000 ms\)/);
    expect(notes.slice(1).every((n) => n === '')).toBe(true); // said once, then in the short pass sentence
    expect(last!.reasons.join(' ')).toMatch(/SLO p95 ≤ 100000 ms: untestable/);
    expect(sloOf(last!)!.latencyP95).toMatchObject({ testable: false, untestedIntervals: 5, requests: 0, lastEdgeMs: 60000, breached: false });
  });

  it('α shares add up to alpha: the SLOs get sloAlphaShare, split evenly, the comparison the rest', () => {
    const alphasOf = (thresholds: AnalysisSpec['thresholds'], options = {}) => {
      const judge = createSequentialJudge(options);
      const j = judge.judge(input(thresholds, { ...version(500, 5), timeToFirstByte: histogramOf(500, 0.3) }, { ...version(1500, 15), timeToFirstByte: histogramOf(1500, 0.3) }), judge.initialState());
      const ev = j.evidence as Record<string, { alpha: number }> & { slo: SloReport | null };
      const comparison = ev.errors!.alpha + ev.latency!.alpha + ev.ttfb!.alpha;
      const slo = (ev.slo?.errorRate?.alpha ?? 0) + (ev.slo?.latencyP95?.alpha ?? 0);
      return { comparison, slo, errors: ev.errors!.alpha, slos: ev.slo };
    };
    const both = alphasOf({ maxErrorRate: 0.05, maxLatencyP95Ms: 800 });
    expect(both.comparison + both.slo).toBeCloseTo(0.01, 12);
    expect(both.slo).toBeCloseTo(0.002, 12);
    expect(both.slos!.errorRate!.alpha).toBeCloseTo(0.001, 12);
    expect(both.slos!.latencyP95!.alpha).toBeCloseTo(0.001, 12);
    expect(both.errors).toBeCloseTo(0.01 * 0.8 * 0.6, 12);

    const one = alphasOf({ maxLatencyP95Ms: 800 });
    expect(one.slos!.errorRate).toBeNull();
    expect(one.slo).toBeCloseTo(0.002, 12);
    expect(one.comparison + one.slo).toBeCloseTo(0.01, 12);

    const none = alphasOf(undefined);
    expect(none.slos).toBeNull();
    expect(none.comparison).toBeCloseTo(0.01, 12);

    const custom = alphasOf({ maxErrorRate: 0.05 }, { alpha: 0.05, sloAlphaShare: 0.5 });
    expect(custom.slo).toBeCloseTo(0.025, 12);
    expect(custom.comparison + custom.slo).toBeCloseTo(0.05, 12);

    // maxErrorRate 1 cannot be exceeded: it takes no share.
    const vacuous = alphasOf({ maxErrorRate: 1 });
    expect(vacuous.slos).toBeNull();
    expect(vacuous.comparison).toBeCloseTo(0.01, 12);
  });

  it('validates sloAlphaShare with a clear message', () => {
    expect(sequentialOptionsSchema.parse({ sloAlphaShare: 0.3 })).toEqual({ sloAlphaShare: 0.3 });
    for (const bad of [0, 1, -0.1, 2]) {
      const r = sequentialOptionsSchema.safeParse({ sloAlphaShare: bad });
      expect(r.success).toBe(false);
      expect(r.error!.issues[0]!.message).toMatch(/^sloAlphaShare must be (above 0|below 1) \(the share of alpha the SLO guardrails of analysis\.thresholds get/);
    }
    expect(sequentialOptionsSchema.safeParse({ sloAlphaShare: 'x' }).error!.issues[0]!.message).toBe('sloAlphaShare must be a number');
    expect(() => createSequentialJudge({ sloAlphaShare: 1 })).toThrow(/sloAlphaShare must be above 0 and below 1/);
  });

  it('a limit of 0 fails at the first error; at 100% weight (no baseline) the SLO still counts', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    const clean = judge.judge(input({ maxErrorRate: 0 }, version(500, 0), version(1500, 0)), s);
    expect(clean.verdict).toBe('pass');
    s = clean.state;
    const one = judge.judge(input({ maxErrorRate: 0 }, version(2000, 1), version(0, 0), 100), s);
    expect(one.verdict).toBe('fail');
    expect(one.reasons[0]).toBe("SLO analysis.thresholds.maxErrorRate 0%: the candidate's error rate is above it: 1/2500 (0.04%) since the SLO check started; with a limit of 0 any failed request breaches it.");
    expect(JSON.parse(JSON.stringify(one.evidence))).toMatchObject({ slo: { errorRate: { breached: true } } });

    // 100%: 4% errors against 2%, no baseline at all.
    const full = createSequentialJudge();
    let t = full.initialState();
    let verdict = 'pass';
    for (let k = 0; k < 20 && verdict !== 'fail'; k++) {
      const j = full.judge(input({ maxErrorRate: 0.02 }, version(1000, 40), version(0, 0), 100), t);
      verdict = j.verdict;
      t = j.state;
    }
    expect(verdict).toBe('fail');
    expect(t.failure![0]).toMatch(/^SLO analysis\.thresholds\.maxErrorRate 2%/);
  });

  it('marginal when an SLO e-value is at least 1, even when the comparison leans the other way', () => {
    const run = (rate: number) => {
      const judge = createSequentialJudge();
      let j: ReturnType<typeof judge.judge> | undefined;
      let s = judge.initialState();
      for (let k = 0; k < 4; k++) {
        j = judge.judge(input({ maxErrorRate: 0.02 }, version(1000, rate * 1000), version(3000, rate * 3000)), s);
        expect(j.verdict).toBe('pass');
        s = j.state;
      }
      const ev = j!.evidence as Record<string, { eValue: number }> & { slo: SloReport };
      return { marginal: j!.marginal, comparison: Math.max(ev.errors!.eValue, ev.latency!.eValue), slo: ev.slo.errorRate!.eValue };
    };
    const near = run(0.025); // both versions at 2.5%: nothing against the baseline, a lean above the SLO
    expect(near.comparison).toBeLessThan(1);
    expect(near.slo).toBeGreaterThanOrEqual(1);
    expect(near.marginal).toBe(true);
    const below = run(0.01);
    expect(below.comparison).toBeLessThan(1);
    expect(below.slo).toBeLessThan(1);
    expect(below.marginal).toBe(false);
  });

  it('states written before SLOs (no slo field) still judge, and start the SLO processes at the next check', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    for (let k = 0; k < 3; k++) s = judge.judge(input(undefined, version(500, 5), version(1500, 15)), s).state;
    const legacy = JSON.parse(JSON.stringify(s)) as SequentialState & { consecutiveInconclusive?: number };
    delete legacy.slo;
    legacy.consecutiveInconclusive = 0;
    const alphasBefore = { ...legacy.alphas! };
    const j = judge.judge(input({ maxErrorRate: 0.02 }, version(500, 5), version(1500, 15)), legacy);
    expect(j.verdict).toBe('pass');
    expect(j.state.slo!.errorRate).toMatchObject({ limit: 0.02, alpha: 0.002, events: 5, requests: 500 });
    expect(j.state.alphas).toEqual(alphasBefore); // fixed before: left as it was
    // A state never judged (no slo, no alphas) gets the full split.
    const fresh = JSON.parse(JSON.stringify(judge.initialState())) as SequentialState;
    const f = judge.judge(input({ maxErrorRate: 0.02 }, version(500, 5), version(1500, 15)), fresh);
    expect(f.state.alphas!.errors).toBeCloseTo(0.0048, 12);
    // The state with SLOs is still plain JSON, and judging is deterministic through a round trip.
    const next = input({ maxErrorRate: 0.02 }, version(500, 9), version(1500, 15));
    expect(judge.judge(next, f.state)).toEqual(judge.judge(next, JSON.parse(JSON.stringify(f.state)) as SequentialState));
    expect(f.state).toEqual(JSON.parse(JSON.stringify(f.state)));
    // A failed legacy state still reports.
    const failed = { ...legacy, failure: ['errors: …'] };
    expect(judge.judge(next, failed).verdict).toBe('fail');
  });

  it('the SLOs are fixed at the first check: thresholds given later are not picked up mid-rollout', () => {
    const judge = createSequentialJudge();
    const j1 = judge.judge(input(undefined, version(500, 5), version(1500, 15)), judge.initialState());
    const j2 = judge.judge(input({ maxErrorRate: 0 }, version(500, 5), version(1500, 15)), j1.state);
    expect(j2.verdict).toBe('pass');
    expect(sloOf(j2)).toBeNull();
  });
});
