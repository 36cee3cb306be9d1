/**
 * The CPU one metric check costs in the workflow's own code, without Temporal: what a worker
 * spends per check on top of the SDK's fixed costs (bench/scale/run.ts measures the whole). The
 * steps of `runCheck` in src/workflows/rollout.ts, on readings like the gateway's (four
 * histograms and LLM counts per version, cumulative, ~3 requests per version per check):
 * the activity result crossing into the workflow (JSON), sampleBetween, the sequential judge,
 * the step policy, the decision's summary and record, and — once every `--status-every`
 * checks — a status query's answer (statusOf + JSON). Less noisy than the full bench: use it to
 * compare before/after. `npx tsx bench/scale/check-cost.ts [--checks 3000] [--status-every 10]`
 */
import { parseArgs } from 'node:util';
import { judgeFor } from '../../src/analysis/judges';
import { emptyHistogram, emptyLlmCounts, observe, sampleBetween, type MetricsSample, type VersionMetrics } from '../../src/analysis/metrics';
import { rolloutSpecSchema } from '../../src/spec/schema';
import { newRolloutState, recordDecision, statusOf } from '../../src/workflows/state';
import { decideAfterCheck, type CheckOutcome } from '../../src/workflows/step-policy';
import { decisionSummary } from '../../src/workflows/summary';

const { values } = parseArgs({ options: { checks: { type: 'string', default: '3000' }, 'status-every': { type: 'string', default: '10' }, metrics: { type: 'string', default: '' } } });
const CHECKS = Number(values.checks);
const STATUS_EVERY = Number(values['status-every']);

// A deterministic random source, so that runs compare.
let seed = 42;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const lognormal = (median: number, sigma: number) => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random()));

function emptyVersion(): VersionMetrics {
  return { countingSince: '2026-01-01T00:00:00.000Z', requests: 0, errors: 0, latency: emptyHistogram(), timeToFirstByte: emptyHistogram(), timeToFirstToken: emptyHistogram(), interTokenLatency: emptyHistogram(), llm: emptyLlmCounts() };
}

function serve(v: VersionMetrics, requests: number): void {
  for (let i = 0; i < requests; i++) {
    v.requests += 1;
    if (random() < 0.002) v.errors += 1;
    const ms = lognormal(30, 0.3);
    observe(v.latency, ms);
    observe(v.timeToFirstByte!, ms * 0.9);
    observe(v.timeToFirstToken!, ms * 0.9);
    observe(v.interTokenLatency!, 2);
    const llm = v.llm!;
    llm.requests += 1;
    llm.inputTokens.sum += 10;
    llm.inputTokens.sumSquares += 100;
    llm.outputTokens.sum += 8;
    llm.outputTokens.sumSquares += 64;
    llm.inputOutputSum += 80;
    llm.generationSeconds += 0.01;
  }
}

const metricsArg = values.metrics ? Object.fromEntries(values.metrics.split(',').map((m) => [m, {}])) : undefined;
const spec = rolloutSpecSchema.parse({
  target: 'chat',
  baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
  candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
  steps: [{ weight: 50, bake: '30d' }, { weight: 100 }],
  analysis: { interval: '2s', minRequests: 5, inconclusiveLimit: 100000, ...(metricsArg ? { metrics: metricsArg } : {}) },
});
const judge = judgeFor(spec.analysis);
const state = newRolloutState('rollout-chat', spec, judge.initialState(), '2026-01-01T00:00:00.000Z');
const step = spec.steps[0]!;
const cumulative: MetricsSample = { baseline: emptyVersion(), candidate: emptyVersion() };
let last: MetricsSample = JSON.parse(JSON.stringify(cumulative));
const context = { analysis: spec.analysis, judge: { name: judge.name, failIsFinal: judge.failIsFinal === true, adaptive: judge.adaptive === true }, step, nextWeight: 100 };
let counters = { stepChecks: 0, stepExtensions: 0, failedChecks: 0, consecutiveInconclusive: 0 };

const time = { reading: 0, judge: 0, policy: 0, record: 0, status: 0 };
let statusBytes = 0;
let statusCount = 0;
const t0 = performance.now();
for (let k = 0; k < CHECKS; k++) {
  serve(cumulative.baseline, 3);
  serve(cumulative.candidate, 3);
  let t = performance.now();
  // The activity's result as the workflow receives it: a JSON payload, parsed.
  const reading = JSON.parse(JSON.stringify({ kind: 'cumulative', sample: cumulative })) as { sample: MetricsSample };
  const interval = sampleBetween(last, reading.sample);
  last = reading.sample;
  time.reading += performance.now() - t;
  t = performance.now();
  const judgement = judge.judge({ analysis: spec.analysis, candidateWeight: step.weight, interval, pricing: {} }, state.judgeState);
  state.judgeState = judgement.state;
  time.judge += performance.now() - t;
  t = performance.now();
  const check: CheckOutcome = { verdict: judgement.verdict, reasons: judgement.reasons, ready: judgement.readyToAdvance === true, marginal: judgement.marginal === true, ...(judgement.wait ? { wait: judgement.wait } : {}), candidateRate: interval.candidate.requests / 2 };
  const { counters: next, decision } = decideAfterCheck(context, counters, check, { bakeWasOver: false, bakedMs: k * 2000 });
  counters = next;
  time.policy += performance.now() - t;
  t = performance.now();
  const waiting = decision.kind === 'extend' || decision.kind === 'hold' ? decision.waiting : undefined;
  const then = decision.kind === 'rollback' || decision.kind === 'end' ? { action: decision.kind, reason: decision.reason } : { action: decision.kind };
  const d = { at: new Date(Date.UTC(2026, 0, 1) + k * 2000).toISOString(), step: 0, weight: step.weight, verdict: judgement.verdict, reasons: judgement.reasons, metrics: judgement.metrics, ...(judgement.evidence ? { evidence: judgement.evidence } : {}), failedChecks: 0, then, ...(waiting ? { waiting } : {}) };
  const summary = decisionSummary({ baseline: 'v1', candidate: 'v2' }, d, { weight: 100, approval: false });
  recordDecision(state, { summary, ...d });
  state.lastReading = reading.sample;
  time.record += performance.now() - t;
  if (STATUS_EVERY > 0 && k % STATUS_EVERY === 0) {
    t = performance.now();
    statusBytes = JSON.stringify(statusOf(state)).length;
    statusCount++;
    time.status += performance.now() - t;
  }
}
const total = performance.now() - t0;
const perCheck = (x: number) => ((x / CHECKS) * 1000).toFixed(0).padStart(6);
console.log(`${CHECKS} checks, ${(total / 1000).toFixed(2)} s: ${((total / CHECKS) * 1000).toFixed(0)} µs per check (status answer every ${STATUS_EVERY}: ${(statusBytes / 1024).toFixed(0)} KiB, ${((time.status / Math.max(1, statusCount)) * 1000).toFixed(0)} µs each)`);
for (const [k, v] of Object.entries(time)) console.log(`  ${k.padEnd(8)} ${perCheck(v)} µs/check`);
const decision = state.decisions[state.decisions.length - 1]!;
console.log(`decision ${(JSON.stringify(decision).length / 1024).toFixed(1)} KiB; judge state ${(JSON.stringify(state.judgeState).length / 1024).toFixed(1)} KiB; whole state ${(JSON.stringify(state).length / 1024).toFixed(0)} KiB; last verdict ${decision.verdict} (${decision.then?.action})`);
