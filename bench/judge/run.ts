/**
 * Judge benchmark: `npm run bench:judge [-- --quick] [--workers N] [--out path] [--only REGEX]`
 * (`--only`: just the scenarios whose id matches, for exploring; the committed run has them all).
 * Runs every scenario's seeded rollouts through every judge (same traffic for all), in worker
 * threads, prints a table and writes bench/results/judge.json.
 *
 * Three passes:
 *  1. every scenario through ours and the stock-configured baselines;
 *  2. calibration, per stratum (the base error rate: an operator sets a judge's knobs for their
 *     service, and a threshold scale that is strict at 1% errors may be loose at 0.1%): the
 *     stratum's A/A cells (≥ 3 pods, as in the targets) on separate seeds, recorded once per
 *     rollout; each baseline's knob is set so that its pooled A/A false-rollback rate on those
 *     seeds is at most ours in that stratum from pass 1 (the largest such rate not above it);
 *  3. every scenario through the calibrated baselines (`<name>-cal`, with the knob of the
 *     scenario's stratum), on pass 1's seeds: their A/A rate there is out of sample, and power
 *     is compared at the matched rate, stratum by stratum.
 * The 'llm' cells (LLM gate metrics) run ours only, in pass 1; they are summarized apart
 * (`llm` in the JSON) and stay out of the calibration, the matched comparison and the targets.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { MetricsSample } from '../../src/analysis/metrics';
import { BASELINES, JUDGES, calibratedJudges, recorder, sprtOracle, type BenchJudge, type RecordedCheck } from './judges';
import { GATE_METRIC_NAMES } from '../../src/analysis/gate-metrics';
import { hashSeed } from './random';
import { INTERVAL_SECONDS, newRollout } from './simulator';
import { LADDER_HORIZON, runRollout, type Outcome } from './rollout';
import { scenarios, type Scenario } from './scenarios';
import { clopperPearson, fixedSampleDetectionN, fixedSampleReadinessN, quantile, twoProportionZ } from './stats';
import { resolveOptions } from '../../src/analysis/sequential';

interface Task {
  kind: 'run' | 'calibrate';
  scenario: number;
  from: number;
  to: number;
  /** kind 'run': calibrated knobs (pass 3); absent = stock judges (pass 1). */
  knobs?: Record<string, number>;
}
interface TaskResult {
  task: Task;
  /** outcomes[judge][rep] */
  outcomes: Outcome[][];
  /** Pass 1, errors at a fixed weight: the SPRT oracle's outcomes on the same rollouts (a floor). */
  floor?: Outcome[];
  /** kind 'calibrate': criticals[family][rep] */
  criticals: number[][];
}

const RUN_SEED = 0xbe9c;
const CALIBRATION_SEED = 0xca1b;

function judgesFor(task: Task): BenchJudge[] {
  return task.knobs ? calibratedJudges(task.knobs) : JUDGES;
}

function runTask(all: Scenario[], task: Task): TaskResult {
  const s = all[task.scenario]!;
  if (task.kind === 'calibrate') {
    const criticals: number[][] = BASELINES.map(() => []);
    for (let rep = task.from; rep < task.to; rep++) {
      const rollout = newRollout(s.world, hashSeed(CALIBRATION_SEED, task.scenario, rep), s.horizon);
      const checks: RecordedCheck[] = [];
      runRollout(recorder(checks), rollout, s.schedule, s.analysis, new Map());
      BASELINES.forEach((b, i) => criticals[i]!.push(b.critical(checks, s.analysis)));
    }
    return { task, outcomes: [], criticals };
  }
  // The 'llm' cells: ours only (JUDGES[0]); the baselines do not know the LLM metrics.
  const judges = s.group === 'llm' ? (task.knobs ? [] : JUDGES.slice(0, 1)) : judgesFor(task);
  const outcomes: Outcome[][] = judges.map(() => []);
  const floorJudge = !task.knobs && oracleN(s) !== null ? sprtOracle(s.world.errorFactor) : undefined;
  const floor: Outcome[] = [];
  for (let rep = task.from; rep < task.to; rep++) {
    const rollout = newRollout(s.world, hashSeed(RUN_SEED, task.scenario, rep), s.horizon);
    const cache = new Map<string, MetricsSample>();
    judges.forEach((judge, j) => outcomes[j]!.push(runRollout(judge, rollout, s.schedule, s.analysis, cache)));
    if (floorJudge) floor.push(runRollout(floorJudge, rollout, s.schedule, s.analysis, cache));
  }
  return { task, outcomes, criticals: [], ...(floorJudge ? { floor } : {}) };
}

/** The scenarios of this run: all, or those whose id matches `--only REGEX`. */
function selected(quick: boolean, only: string | undefined): Scenario[] {
  const pattern = only === undefined ? undefined : new RegExp(only);
  return scenarios(quick).filter((s) => !pattern || pattern.test(s.id));
}

if (!isMainThread) {
  const { quick, only } = workerData as { quick: boolean; only?: string };
  const all = selected(quick, only);
  parentPort!.on('message', (task: Task | null) => {
    if (task === null) process.exit(0);
    parentPort!.postMessage(runTask(all, task));
  });
} else {
  void main();
}

/** A pool of worker threads running tasks; each result goes to `onResult`. */
async function runPool(tasks: Task[], workers: number, quick: boolean, only: string | undefined, onResult: (r: TaskResult) => void, started: number): Promise<void> {
  let done = 0;
  await new Promise<void>((resolveAll, reject) => {
    let next = 0;
    let live = workers;
    for (let w = 0; w < workers; w++) {
      // A CommonJS bootstrap that registers tsx, then loads this file in the worker.
      const bootstrap = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(__filename)});`;
      const worker = new Worker(bootstrap, { eval: true, workerData: { quick, only } });
      const feed = () => {
        if (next < tasks.length) worker.postMessage(tasks[next++]);
        else {
          worker.postMessage(null);
          if (--live === 0) resolveAll();
        }
      };
      worker.on('message', (r: TaskResult) => {
        onResult(r);
        done++;
        if (done % 50 === 0) process.stderr.write(`  ${done}/${tasks.length} tasks, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
        feed();
      });
      worker.on('error', reject);
      feed();
    }
  });
}

/** A/A cells the targets are about: ≥ 3 canary pods. */
const isTargetAA = (s: { group: string; scenario?: string; id?: string }) => s.group === 'A/A' && !/pods=1 /.test(s.scenario ?? s.id ?? '');

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const workersArg = args.indexOf('--workers');
  const workers = workersArg >= 0 ? Number(args[workersArg + 1]) : Math.max(1, Math.min(2, availableParallelism()));
  const outArg = args.indexOf('--out');
  const outPath = resolve(outArg >= 0 ? args[outArg + 1]! : 'bench/results/judge.json');
  const onlyArg = args.indexOf('--only');
  const only = onlyArg >= 0 ? args[onlyArg + 1] : undefined;
  const all = selected(quick, only);
  if (all.length === 0) throw new Error(`--only ${only}: no scenario matches`);
  const chunk = quick ? 10 : 25;
  const split = (kind: Task['kind'], which: (s: Scenario) => boolean, reps: (s: Scenario) => number, knobsFor?: (s: Scenario) => Record<string, number>): Task[] => {
    const tasks: Task[] = [];
    all.forEach((s, i) => {
      if (!which(s)) return;
      const knobs = knobsFor?.(s);
      for (let from = 0; from < reps(s); from += chunk) tasks.push({ kind, scenario: i, from, to: Math.min(reps(s), from + chunk), ...(knobs ? { knobs } : {}) });
    });
    return tasks;
  };
  const started = Date.now();

  // Pass 1: ours and the stock baselines.
  const results: Outcome[][][] = all.map(() => JUDGES.map(() => []));
  const floors: Outcome[][] = all.map(() => []);
  await runPool(split('run', () => true, (s) => s.reps), workers, quick, only, (r) => {
    r.outcomes.forEach((o, j) => results[r.task.scenario]![j]!.push(...o));
    floors[r.task.scenario]!.push(...(r.floor ?? []));
  }, started);
  const rows = summarize(all, results, JUDGES, floors);

  // Pass 2: calibrate each baseline's knob to our A/A false-rollback rate, per stratum, on other seeds.
  const strata = [...new Set(all.filter((s) => isTargetAA(s)).map((s) => s.world.baseErrorRate))];
  const criticals = new Map(strata.map((base) => [base, BASELINES.map((): number[] => [])]));
  await runPool(split('calibrate', (s) => isTargetAA(s), (s) => s.reps), workers, quick, only, (r) => {
    const byFamily = criticals.get(all[r.task.scenario]!.world.baseErrorRate)!;
    r.criticals.forEach((c, i) => byFamily[i]!.push(...c));
  }, started);
  const calibration: Calibration[] = strata.flatMap((base) => {
    const ourAA = aaRate(rows.filter((r) => r.baseErrorRate === base), 'sequential');
    return BASELINES.map((b, i) => {
      const c = [...criticals.get(base)![i]!].sort((x, y) => y - x); // descending
      const allowed = Math.floor(ourAA * c.length + 1e-9); // rollbacks allowed on the calibration seeds
      // Roll back iff knob < critical: at knob = c[allowed], at most `allowed` rollouts roll back.
      const knob = c[allowed] ?? 0;
      const rate = c.filter((x) => x > knob).length / Math.max(1, c.length);
      return { judge: b.name, stratum: base, knob: b.knob, stock: b.stock, calibrated: sig4(knob), calibrationRollouts: c.length, calibrationRate: round4(rate), targetRate: round4(ourAA) };
    });
  });
  const knobsFor = (s: Scenario) =>
    Object.fromEntries(calibration.filter((c) => c.stratum === s.world.baseErrorRate).map((c) => [c.judge, c.calibrated]));

  // Pass 3: the calibrated baselines (the knob of each scenario's stratum) on pass 1's seeds.
  const cal = calibratedJudges(Object.fromEntries(BASELINES.map((b) => [b.name, b.stock])));
  const calResults: Outcome[][][] = all.map(() => cal.map(() => []));
  await runPool(split('run', (s) => s.group !== 'llm', (s) => s.reps, knobsFor), workers, quick, only, (r) => r.outcomes.forEach((o, j) => calResults[r.task.scenario]![j]!.push(...o)), started);
  const report = [...rows, ...summarize(all, calResults, cal)];

  const seconds = (Date.now() - started) / 1000;
  printTable(report.filter((r) => r.group !== 'llm'));
  const llm = llmSummary(report, all);
  printLlm(llm);
  const matched = matchedComparison(report, calibration);
  printMatched(matched);
  const targets = checkTargets(report, matched);
  console.log('\nTargets (our judge):');
  for (const t of targets) console.log(`  [${t.met ? 'met' : 'NOT met'}] ${t.target}: ${t.measured}`);
  const gate = gateSummary(report);
  console.log(`\nHealthy (A/A) ladder rollouts, ours (≥ 3 canary pods), within the ${(LADDER_HORIZON * INTERVAL_SECONDS) / 3600} h horizon:`);
  for (const g of gate) console.log(`  ${g.cells}: promoted ${pct(g.promoted)}, still holding at the 25% readiness gate ${pct(g.held)}, rolled back ${pct(g.rolledBack)}; minutes to promote p50/p90 ${g.promoteMinutesP50}/${g.promoteMinutesP90} (worst cell)`);
  const readiness = readinessSummary(report);
  console.log('\nIdentical candidates at low traffic, ours (ladder): first ready check, and promotion:');
  for (const r of readiness) {
    console.log(
      `  ${r.scenario}: ready after ${r.readyMinutesP50 ?? '-'}/${r.readyMinutesP90 ?? '-'} min (p50/p90), ${r.readyRequestsP50 ?? '-'}/${r.readyRequestsP90 ?? '-'} candidate requests; ` +
        `promoted ${pct(r.promoted)} in ${r.promoteMinutesP50 ?? '-'}/${r.promoteMinutesP90 ?? '-'} min; a fixed-sample test at the same slack and α needs ${r.fixedSampleN50}/${r.fixedSampleN90} candidate requests (50%/90% power)`,
    );
  }
  const judges = [...JUDGES, ...cal].map((j) => j.name);
  console.log(`\n${all.reduce((s, x) => s + x.reps, 0)} rollouts × ${judges.length} judges in ${seconds.toFixed(0)} s on ${workers} worker(s)${quick ? ' (--quick)' : ''}.`);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, JSON.stringify({ quick, seconds, workers, judges, calibration, matched, gate, readiness, llm, scenarios: report, targets }, null, 2) + '\n');
  console.log(`wrote ${outPath}`);
}

interface Calibration {
  judge: string;
  /** The stratum: the scenarios' base error rate. */
  stratum: number;
  knob: string;
  stock: number;
  calibrated: number;
  calibrationRollouts: number;
  calibrationRate: number;
  targetRate: number;
}

interface Row {
  scenario: string;
  group: Scenario['group'];
  /** The calibration stratum. */
  baseErrorRate: number;
  schedule: string;
  judge: string;
  n: number;
  rollbacks: number;
  rollbackRate: number;
  rollbackCI: [number, number];
  /** Ladder: rollbacks while the weight was below 25%. */
  rollbackBefore25: number;
  promoted: number;
  held: number;
  /** Candidate requests from onset to rollback (detected rollouts). */
  delayP50: number | null;
  delayP90: number | null;
  /** A/A: minutes to promotion (promoted rollouts). */
  promoteMinutesP50: number | null;
  promoteMinutesP90: number | null;
  /** Minutes (and candidate requests) to the first ready check, rollouts that got there. */
  readyMinutesP50: number | null;
  readyMinutesP90: number | null;
  readyRequestsP50: number | null;
  readyRequestsP90: number | null;
  /** Errors at a fixed weight: the fixed-sample oracle's n (90% power at the judge's α and tolerance), and delay p90 / it. */
  oracleN: number | null;
  oracleRatio: number | null;
  /** Ours, errors at a fixed weight: the SPRT that knows the true ratio (judges.ts sprtOracle) on the same rollouts — the least any anytime-valid test can do. */
  floorPower: number | null;
  floorDelayP90: number | null;
  floorRatio: number | null;
  harmedMean: number;
  /** Minutes to the rollback (rolled-back rollouts). */
  rollbackMinutesP50: number | null;
  rollbackMinutesP90: number | null;
  /** Ours: rollbacks by the gate metric the failing check named (a rollback may name several; 'other' = none: SLO, resources, catastrophe). */
  failedOn?: Record<string, number>;
  /**
   * Ours, 'llm' cells: per tested metric, the rollouts whose e-value ever reached 10 and 100. Where
   * the true ratio is within the metric's tolerance (A/A, at-tolerance cells) Ville's inequality
   * bounds these shares by 10% and 1%: a calibration check far sharper than rollbacks at 1/α.
   */
  supE?: Record<string, { ge10: number; ge100: number }>;
}

function summarize(all: Scenario[], results: Outcome[][][], judges: BenchJudge[], floors?: Outcome[][]): Row[] {
  const rows: Row[] = [];
  all.forEach((s, i) => {
    judges.forEach((judge, j) => {
      const o = results[i]![j]!;
      if (o.length === 0) return; // a judge the cell does not run (the 'llm' cells: ours only)
      const rb = o.filter((x) => x.rolledBack);
      const promoted = o.filter((x) => x.promoted);
      const minutes = (x: Outcome) => ((x.decidedAt + 1) * INTERVAL_SECONDS) / 60;
      const ready = o.filter((x) => x.readyAt !== null);
      const oracle = oracleN(s);
      const delayP90 = quantile(rb.map((x) => x.candidateRequestsSinceOnset), 0.9);
      const floor = judge.name === 'sequential' ? floors?.[i] ?? [] : [];
      const floorRb = floor.filter((x) => x.rolledBack);
      const floorP90 = floor.length > 0 ? quantile(floorRb.map((x) => x.candidateRequestsSinceOnset), 0.9) : null;
      rows.push({
        scenario: s.id,
        group: s.group,
        baseErrorRate: s.world.baseErrorRate,
        schedule: s.schedule.kind === 'fixed' ? `fixed ${s.schedule.weight}%` : 'ladder',
        judge: judge.name,
        n: o.length,
        rollbacks: rb.length,
        rollbackRate: rb.length / o.length,
        rollbackCI: clopperPearson(rb.length, o.length).map(round4) as [number, number],
        rollbackBefore25: rb.filter((x) => x.weightAtDecision < 25).length,
        promoted: promoted.length,
        held: o.filter((x) => x.held).length,
        delayP50: roundN(quantile(rb.map((x) => x.candidateRequestsSinceOnset), 0.5)),
        delayP90: roundN(delayP90),
        promoteMinutesP50: roundN(quantile(promoted.map(minutes), 0.5)),
        promoteMinutesP90: roundN(quantile(promoted.map(minutes), 0.9)),
        readyMinutesP50: round1(quantile(ready.map((x) => ((x.readyAt! + 1) * INTERVAL_SECONDS) / 60), 0.5)),
        readyMinutesP90: round1(quantile(ready.map((x) => ((x.readyAt! + 1) * INTERVAL_SECONDS) / 60), 0.9)),
        readyRequestsP50: roundN(quantile(ready.map((x) => x.readyCandidateRequests!), 0.5)),
        readyRequestsP90: roundN(quantile(ready.map((x) => x.readyCandidateRequests!), 0.9)),
        oracleN: oracle === null ? null : Math.round(oracle),
        oracleRatio: oracle === null || delayP90 === null ? null : Math.round((delayP90 / oracle) * 100) / 100,
        floorPower: floor.length > 0 ? round4(floorRb.length / floor.length) : null,
        floorDelayP90: roundN(floorP90),
        floorRatio: oracle === null || floorP90 === null ? null : Math.round((floorP90 / oracle) * 100) / 100,
        harmedMean: Math.round(o.reduce((sum, x) => sum + x.harmed, 0) / o.length),
        rollbackMinutesP50: round1(quantile(rb.map(minutes), 0.5)),
        rollbackMinutesP90: round1(quantile(rb.map(minutes), 0.9)),
        ...(judge.name === 'sequential' ? { failedOn: failedOnCounts(rb) } : {}),
        ...(judge.name === 'sequential' && s.group === 'llm' ? { supE: supECounts(o) } : {}),
      });
    });
  });
  return rows;
}

function supECounts(outcomes: Outcome[]): Record<string, { ge10: number; ge100: number }> {
  const out: Record<string, { ge10: number; ge100: number }> = {};
  for (const x of outcomes) {
    for (const [name, e] of Object.entries(x.maxEValue ?? {})) {
      const c = (out[name] ??= { ge10: 0, ge100: 0 });
      if (e >= 10) c.ge10++;
      if (e >= 100) c.ge100++;
    }
  }
  return out;
}

function failedOnCounts(rolledBack: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const x of rolledBack) {
    const names = x.failedOn && x.failedOn.length > 0 ? x.failedOn : ['other'];
    for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

interface LlmRow {
  scenario: string;
  /** The LLM gate metric tested (beside errors and latency). */
  metric: string;
  kind: 'A/A' | 'A/B';
  n: number;
  rollbacks: number;
  rollbackRate: number;
  rollbackCI: [number, number];
  /** Rollbacks whose failing check named the LLM metric (the rest: errors or latency, A/A false alarms of the default metrics). */
  rollbacksOnMetric: number;
  rollbackBefore25: number;
  promoted: number;
  held: number;
  /** Minutes to the decision: the rollback (rolled back) or the promotion (promoted), p50/p90. */
  rollbackMinutesP50: number | null;
  rollbackMinutesP90: number | null;
  promoteMinutesP50: number | null;
  promoteMinutesP90: number | null;
  /** Candidate requests from the start (onset 0) to the rollback. */
  delayP50: number | null;
  delayP90: number | null;
  readyMinutesP50: number | null;
  failedOn: Record<string, number>;
  /** The metric's e-value reached 10 / 100 in this many rollouts (Ville: ≤ n/10 and n/100 when within tolerance). */
  metricSupE: { ge10: number; ge100: number };
  supE: Record<string, { ge10: number; ge100: number }>;
}

function llmSummary(rows: Row[], all: Scenario[]): LlmRow[] {
  return rows
    .filter((r) => r.group === 'llm' && r.judge === 'sequential')
    .map((r) => {
      const listed = all.find((s) => s.id === r.scenario)?.analysis.metrics ?? {};
      const metric = GATE_METRIC_NAMES.find((m) => m !== 'errors' && m !== 'latency' && m in listed) ?? '?';
      const failedOn = r.failedOn ?? {};
      return {
        scenario: r.scenario,
        metric,
        kind: /^llm (A\/A|tol=)/.test(r.scenario) ? 'A/A' : 'A/B',
        n: r.n,
        rollbacks: r.rollbacks,
        rollbackRate: round4(r.rollbackRate),
        rollbackCI: r.rollbackCI,
        rollbacksOnMetric: failedOn[metric] ?? 0,
        rollbackBefore25: r.rollbackBefore25,
        promoted: r.promoted,
        held: r.held,
        rollbackMinutesP50: r.rollbackMinutesP50,
        rollbackMinutesP90: r.rollbackMinutesP90,
        promoteMinutesP50: r.promoteMinutesP50,
        promoteMinutesP90: r.promoteMinutesP90,
        delayP50: r.delayP50,
        delayP90: r.delayP90,
        readyMinutesP50: r.readyMinutesP50,
        failedOn,
        metricSupE: r.supE?.[metric] ?? { ge10: 0, ge100: 0 },
        supE: r.supE ?? {},
      };
    });
}

function printLlm(rows: LlmRow[]): void {
  if (rows.length === 0) return;
  console.log('\nLLM gate metrics, ours (ladder; analysis.metrics = errors, latency and the metric):');
  const header = ['scenario', 'n', 'rollback [95% CI]', 'on metric', 'E≥10/E≥100', '<25%', 'promo', 'held', 'rollback min p50/p90', 'promote min p50/p90', 'delay p50/p90', 'failed on'];
  const lines = rows.map((r) => [
    r.scenario,
    String(r.n),
    `${pct(r.rollbackRate)} [${pct(r.rollbackCI[0])}, ${pct(r.rollbackCI[1])}]`,
    String(r.rollbacksOnMetric),
    `${r.metricSupE.ge10}/${r.metricSupE.ge100}`,
    String(r.rollbackBefore25),
    String(r.promoted),
    String(r.held),
    `${r.rollbackMinutesP50 ?? '-'}/${r.rollbackMinutesP90 ?? '-'}`,
    `${r.promoteMinutesP50 ?? '-'}/${r.promoteMinutesP90 ?? '-'}`,
    r.kind === 'A/A' ? '' : `${r.delayP50 ?? '-'}/${r.delayP90 ?? '-'}`,
    Object.entries(r.failedOn).map(([m, n]) => `${m} ${n}`).join(', '),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  for (const l of [header, ...lines]) console.log('  ' + l.map((x, c) => (c === 0 || c === l.length - 1 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  '));
}

/**
 * Errors regressions at a fixed weight from the start: the candidate requests a fixed-sample test
 * at our judge's tolerance and α (its errors share) needs for 90% power (stats.ts).
 */
function oracleN(s: Scenario): number | null {
  if (s.group !== 'errors' || s.schedule.kind !== 'fixed' || s.world.onset !== 0) return null;
  const o = resolveOptions({});
  return fixedSampleDetectionN({ baseRate: s.world.baseErrorRate, factor: s.world.errorFactor, weight: s.schedule.weight, r0: o.tolerances.errors, alpha: o.alpha * o.alphaSplit.errors, power: 0.9 });
}

const round1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const sig4 = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)) : x);
const roundN = (x: number | null) => (x === null ? null : Math.round(x));
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function printTable(rows: Row[]): void {
  const header = ['scenario', 'judge', 'n', 'rollback [95% CI]', '<25%', 'promo', 'held', 'delay p50/p90', 'oracle n (p90 ×)', 'SPRT floor p90 (×)', 'promote min p50/p90', 'harmed'];
  const lines = rows.map((r) => [
    r.scenario,
    r.judge,
    String(r.n),
    `${pct(r.rollbackRate)} [${pct(r.rollbackCI[0])}, ${pct(r.rollbackCI[1])}]`,
    r.schedule === 'ladder' ? String(r.rollbackBefore25) : '',
    String(r.promoted),
    String(r.held),
    r.group === 'A/A' ? '' : `${r.delayP50 ?? '-'}/${r.delayP90 ?? '-'}`,
    r.oracleN === null ? '' : `${r.oracleN} (${r.oracleRatio ?? '-'}×)`,
    r.floorDelayP90 === null ? '' : `${r.floorDelayP90} (${r.floorRatio ?? '-'}×)`,
    r.group === 'A/A' && r.schedule === 'ladder' ? `${r.promoteMinutesP50 ?? '-'}/${r.promoteMinutesP90 ?? '-'}` : '',
    r.group === 'A/A' ? '' : String(r.harmedMean),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const fmt = (cells: string[]) => cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  ');
  console.log(fmt(header));
  let last = '';
  for (const l of lines) {
    if (l[0] !== last && last !== '') console.log('');
    last = l[0]!;
    console.log(fmt(l));
  }
}

interface TargetCheck {
  target: string;
  met: boolean;
  measured: string;
}

function checkTargets(rows: Row[], matched: Matched[]): TargetCheck[] {
  const ours = rows.filter((r) => r.judge === 'sequential');
  const out: TargetCheck[] = [];
  const aa = ours.filter((r) => r.group === 'A/A' && !/pods=1 /.test(r.scenario));
  const worst = aa.reduce((w, r) => (r.rollbackRate > w.rollbackRate ? r : w), aa[0]!);
  if (worst) out.push({
    target: 'A/A false rollback ≤ 1% per rollout in every cell with ≥3 canary pods',
    met: aa.every((r) => r.rollbackRate <= 0.01),
    measured: `worst ${pct(worst.rollbackRate)} [${pct(worst.rollbackCI[0])}, ${pct(worst.rollbackCI[1])}] in "${worst.scenario}"; total ${aa.reduce((s, r) => s + r.rollbacks, 0)}/${aa.reduce((s, r) => s + r.n, 0)}`,
  });
  const x2 = ours.filter((r) => /errors x2 base=1% onset=0/.test(r.scenario));
  out.push({
    target: 'errors ×2 at 1% base caught with p90 ≤ 3.5k candidate requests',
    met: x2.every((r) => r.delayP90 !== null && r.delayP90 <= 3500 && r.rollbackRate >= 0.9),
    measured: x2.map((r) => `${r.schedule}: power ${pct(r.rollbackRate)}, p90 ${r.delayP90 ?? '-'}`).join('; '),
  });
  const x5 = ours.filter((r) => /errors x5 base=1% onset=0/.test(r.scenario));
  out.push({
    target: 'errors ×5 at 1% base caught within ≤ 400 candidate requests (p90)',
    met: x5.every((r) => r.delayP90 !== null && r.delayP90 <= 400 && r.rollbackRate >= 0.9),
    measured: x5.map((r) => `${r.schedule}: power ${pct(r.rollbackRate)}, p90 ${r.delayP90 ?? '-'}`).join('; '),
  });
  // The same two targets where they can be met at all: on the ladder and at the early weights.
  // At a fixed 25% or 50% one 30 s check already holds 750 or 1,500 candidate requests, and with
  // a baseline no larger than ~3× the candidate each candidate request carries about half the
  // information it does at 1% (the baseline's own rate is no longer known almost exactly).
  const early = (r: Row) => r.schedule === 'ladder' || r.schedule === 'fixed 1%' || r.schedule === 'fixed 5%';
  for (const [factor, limit, rs] of [['2', 3500, x2.filter(early)], ['5', 400, x5.filter(early)]] as const) {
    out.push({
      target: `errors ×${factor} at 1% base, p90 ≤ ${limit} candidate requests on the ladder and at fixed 1%/5%`,
      met: rs.every((r) => r.delayP90 !== null && r.delayP90 <= limit && r.rollbackRate >= 0.9),
      measured: rs.map((r) => `${r.schedule}: power ${pct(r.rollbackRate)}, p90 ${r.delayP90 ?? '-'}`).join('; '),
    });
  }
  const nearOracle = x2.filter((r) => ['fixed 1%', 'fixed 5%', 'fixed 25%'].includes(r.schedule));
  out.push({
    target: 'errors ×2 at 1% base at fixed 1%/5%/25%: delay p90 ≤ 1.3× the fixed-sample oracle n (90% power at the same α and tolerance)',
    met: nearOracle.length > 0 && nearOracle.every((r) => r.oracleRatio !== null && r.oracleRatio <= 1.3 && r.rollbackRate >= 0.9),
    measured: nearOracle
      .map((r) => `${r.schedule}: oracle ${r.oracleN}, ours p90 ${r.delayP90 ?? '-'} (${r.oracleRatio ?? '-'}×, power ${pct(r.rollbackRate)}), SPRT floor p90 ${r.floorDelayP90 ?? '-'} (${r.floorRatio ?? '-'}×, power ${r.floorPower === null ? '-' : pct(r.floorPower)})`)
      .join('; '),
  });
  const lat = ours.find((r) => r.scenario === 'latency p95 x1.25 onset=0 ladder');
  if (lat) {
    const power = lat.rollbackBefore25 / lat.n;
    out.push({
      target: 'p95 ×1.25 caught with ≥ 95% power before the 25% step (ladder)',
      met: power >= 0.95,
      measured: `${lat.rollbackBefore25}/${lat.n} = ${pct(power)} before 25%; ${pct(lat.rollbackRate)} overall`,
    });
  }
  // Power vs each baseline at an equal or lower false-rollback rate, stratum by stratum: stock and calibrated.
  for (const m of matched) {
    for (const which of ['stock', 'calibrated'] as const) {
      const name = which === 'stock' ? m.family : `${m.family}-cal`;
      out.push({
        target: `more power than ${name} at an equal or lower false-rollback rate (up to sampling error: z-tests at 1.96)`,
        met: dominates(m, which),
        measured: m.strata
          .map((s) => {
            const c = s[which];
            return `base ${pct(s.stratum)}: A/A ${pct(c.oursAA)} vs ${pct(c.theirAA)}, mean power ${pct(c.oursPower)} vs ${pct(c.theirPower)}, cells ours higher/equal/lower ${c.higher}/${c.equal}/${c.lower}, significantly higher/lower ${c.significantlyHigher}/${c.significantlyLower}`;
          })
          .join('; '),
      });
    }
  }
  return out;
}

interface GateSummary {
  cells: string;
  promoted: number;
  held: number;
  rolledBack: number;
  promoteMinutesP50: number | null;
  promoteMinutesP90: number | null;
}

/**
 * What the readiness gate costs healthy rollouts: pooled over the A/A ladder cells with ≥ 3 canary
 * pods, per base error rate (held = still holding at 25%, its evidence not yet bounded, when the
 * horizon ends).
 */
function gateSummary(rows: Row[]): GateSummary[] {
  const ladder = rows.filter((r) => r.judge === 'sequential' && isTargetAA(r) && r.schedule === 'ladder');
  const groups = [
    { cells: '1% errors', rows: ladder.filter((r) => r.baseErrorRate === 0.01) },
    { cells: '0.1% errors', rows: ladder.filter((r) => r.baseErrorRate === 0.001) },
  ];
  return groups
    .filter((g) => g.rows.length > 0)
    .map((g) => {
      const n = g.rows.reduce((s, r) => s + r.n, 0);
      const worst = (key: 'promoteMinutesP50' | 'promoteMinutesP90') =>
        g.rows.reduce<number | null>((w, r) => (r[key] !== null && (w === null || r[key]! > w) ? r[key] : w), null);
      return {
        cells: `${g.cells} (${g.rows.length} cells, ${n} rollouts)`,
        promoted: g.rows.reduce((s, r) => s + r.promoted, 0) / n,
        held: g.rows.reduce((s, r) => s + r.held, 0) / n,
        rolledBack: g.rows.reduce((s, r) => s + r.rollbacks, 0) / n,
        promoteMinutesP50: worst('promoteMinutesP50'),
        promoteMinutesP90: worst('promoteMinutesP90'),
      };
    });
}

interface ReadinessSummary {
  scenario: string;
  readyMinutesP50: number | null;
  readyMinutesP90: number | null;
  readyRequestsP50: number | null;
  readyRequestsP90: number | null;
  promoted: number;
  promoteMinutesP50: number | null;
  promoteMinutesP90: number | null;
  /** Errors readiness by a fixed-sample test (the judge's slack, readyAlpha), at 50% and 90% power. */
  fixedSampleN50: number;
  fixedSampleN90: number;
}

/** Readiness of identical candidates at low traffic (ours), beside the fixed-sample bound for errors, the slowest metric to bound. */
function readinessSummary(rows: Row[]): ReadinessSummary[] {
  const o = resolveOptions({});
  return rows
    .filter((r) => r.judge === 'sequential' && /^A\/A identical/.test(r.scenario))
    .map((r) => {
      const n = (power: number) => Math.round(fixedSampleReadinessN({ baseRate: r.baseErrorRate, slack: o.readyErrorRateSlack, alpha: o.readyAlpha, power }));
      return {
        scenario: r.scenario,
        readyMinutesP50: r.readyMinutesP50,
        readyMinutesP90: r.readyMinutesP90,
        readyRequestsP50: r.readyRequestsP50,
        readyRequestsP90: r.readyRequestsP90,
        promoted: r.promoted / r.n,
        promoteMinutesP50: r.promoteMinutesP50,
        promoteMinutesP90: r.promoteMinutesP90,
        fixedSampleN50: n(0.5),
        fixedSampleN90: n(0.9),
      };
    });
}

/** Pooled A/A false-rollback rate over the target cells (≥ 3 canary pods). */
function aaRate(rows: Row[], judge: string): number {
  const { rollbacks, n } = aaCounts(rows, judge);
  return rollbacks / n;
}

function aaCounts(rows: Row[], judge: string): { rollbacks: number; n: number } {
  const r = rows.filter((x) => x.judge === judge && isTargetAA(x));
  return { rollbacks: r.reduce((s, x) => s + x.rollbacks, 0), n: Math.max(1, r.reduce((s, x) => s + x.n, 0)) };
}

interface Comparison {
  judge: string;
  oursAA: number;
  theirAA: number;
  /** Ours is not significantly higher than theirs (two-proportion z < 1.96 on the pooled A/A counts). */
  oursAANotHigher: boolean;
  oursPower: number;
  theirPower: number;
  /** A/B cells where our power is higher/equal/lower, as measured... */
  higher: number;
  equal: number;
  lower: number;
  /** ...and where the difference is significant (two-proportion z ≥ 1.96, 200 rollouts a cell in the full run). */
  significantlyHigher: number;
  significantlyLower: number;
}

/**
 * Ours vs `other` over `rows` (all, or one stratum's): pooled A/A rate, mean A/B power, A/B cells
 * where our power is higher/equal/lower.
 */
function compare(rows: Row[], other: string): Comparison {
  const ab = (judge: string) => rows.filter((x) => x.judge === judge && x.group !== 'A/A' && x.group !== 'llm');
  const ours = ab('sequential');
  const theirs = ab(other);
  const mean = (r: Row[]) => r.reduce((s, x) => s + x.rollbackRate, 0) / Math.max(1, r.length);
  let higher = 0;
  let equal = 0;
  let lower = 0;
  let significantlyHigher = 0;
  let significantlyLower = 0;
  ours.forEach((r, i) => {
    const t = theirs[i]!;
    if (r.rollbackRate > t.rollbackRate) higher++;
    else if (r.rollbackRate < t.rollbackRate) lower++;
    else equal++;
    const z = twoProportionZ(r.rollbacks, r.n, t.rollbacks, t.n);
    if (z >= 1.96) significantlyHigher++;
    if (z <= -1.96) significantlyLower++;
  });
  const [a, b] = [aaCounts(rows, 'sequential'), aaCounts(rows, other)];
  return {
    judge: other,
    oursAA: a.rollbacks / a.n,
    theirAA: b.rollbacks / b.n,
    oursAANotHigher: twoProportionZ(a.rollbacks, a.n, b.rollbacks, b.n) < 1.96,
    oursPower: mean(ours),
    theirPower: mean(theirs),
    higher,
    equal,
    lower,
    significantlyHigher,
    significantlyLower,
  };
}

interface StratumComparison {
  /** Base error rate of the stratum's scenarios. */
  stratum: number;
  calibratedKnob: number;
  stock: Comparison;
  calibrated: Comparison;
}

interface Matched {
  family: string;
  knob: string;
  stockKnob: number;
  /** Over every scenario (A/A pooled over every stratum). */
  stock: Comparison;
  calibrated: Comparison;
  strata: StratumComparison[];
}

function matchedComparison(rows: Row[], calibration: Calibration[]): Matched[] {
  const families = [...new Set(calibration.map((c) => c.judge))];
  return families.map((family) => {
    const cs = calibration.filter((c) => c.judge === family);
    return {
      family,
      knob: cs[0]!.knob,
      stockKnob: cs[0]!.stock,
      stock: compare(rows, family),
      calibrated: compare(rows, `${family}-cal`),
      strata: cs.map((c) => {
        const inStratum = rows.filter((r) => r.baseErrorRate === c.stratum);
        return { stratum: c.stratum, calibratedKnob: c.calibrated, stock: compare(inStratum, family), calibrated: compare(inStratum, `${family}-cal`) };
      }),
    };
  });
}

/**
 * Dominance at a matched rate, up to sampling error: in every stratum our A/A rate is not
 * significantly higher and no A/B cell has significantly lower power; some cell significantly higher.
 */
function dominates(m: Matched, which: 'stock' | 'calibrated'): boolean {
  return m.strata.every((s) => s[which].oursAANotHigher && s[which].significantlyLower === 0) && m[which].significantlyHigher > 0;
}

function printMatched(matched: Matched[]): void {
  console.log('\nMatched comparison, per stratum (base error rate) — A/A = pooled false-rollback rate over its ≥3-pod A/A cells; power = mean rollback rate over its A/B cells:');
  const header = ['judge', 'base', 'knob', 'A/A theirs', 'A/A ours', 'power theirs', 'power ours', 'cells ours >/=/<', 'significant >/<'];
  const lines: string[][] = [];
  for (const m of matched) {
    for (const s of m.strata) {
      for (const [label, c, knob] of [['stock', s.stock, m.stockKnob], ['calibrated', s.calibrated, s.calibratedKnob]] as const) {
        lines.push([`${c.judge} (${label})`, pct(s.stratum), `${m.knob} ${sig4(knob)}`, pct(c.theirAA), pct(c.oursAA), pct(c.theirPower), pct(c.oursPower), `${c.higher}/${c.equal}/${c.lower}`, `${c.significantlyHigher}/${c.significantlyLower}`]);
      }
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const l of [header, ...lines]) console.log('  ' + l.map((x, i) => (i < 3 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  '));
}
