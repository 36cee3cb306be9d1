/**
 * Judge benchmark: `npm run bench:judge [-- --quick] [--workers N] [--out path]`.
 * Runs every scenario's seeded rollouts through every judge (same traffic for all), in worker
 * threads, prints a table and writes bench/results/judge.json.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { MetricsSample } from '../../src/analysis/metrics';
import { JUDGES } from './judges';
import { hashSeed } from './random';
import { INTERVAL_SECONDS, newRollout } from './simulator';
import { runRollout, type Outcome } from './rollout';
import { scenarios, type Scenario } from './scenarios';
import { clopperPearson, quantile } from './stats';

interface Task {
  scenario: number;
  from: number;
  to: number;
}
interface TaskResult {
  scenario: number;
  /** outcomes[judge][rep] */
  outcomes: Outcome[][];
}

function runTask(all: Scenario[], task: Task): TaskResult {
  const s = all[task.scenario]!;
  const outcomes: Outcome[][] = JUDGES.map(() => []);
  for (let rep = task.from; rep < task.to; rep++) {
    const rollout = newRollout(s.world, hashSeed(0xbe9c, task.scenario, rep), s.horizon);
    const cache = new Map<string, MetricsSample>();
    JUDGES.forEach((judge, j) => outcomes[j]!.push(runRollout(judge, rollout, s.schedule, s.analysis, cache)));
  }
  return { scenario: task.scenario, outcomes };
}

if (!isMainThread) {
  const { quick } = workerData as { quick: boolean };
  const all = scenarios(quick);
  parentPort!.on('message', (task: Task | null) => {
    if (task === null) process.exit(0);
    parentPort!.postMessage(runTask(all, task));
  });
} else {
  void main();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const workersArg = args.indexOf('--workers');
  const workers = workersArg >= 0 ? Number(args[workersArg + 1]) : Math.max(1, Math.min(2, availableParallelism()));
  const outArg = args.indexOf('--out');
  const outPath = resolve(outArg >= 0 ? args[outArg + 1]! : 'bench/results/judge.json');
  const all = scenarios(quick);
  const tasks: Task[] = [];
  const chunk = quick ? 10 : 25;
  all.forEach((s, i) => {
    for (let from = 0; from < s.reps; from += chunk) tasks.push({ scenario: i, from, to: Math.min(s.reps, from + chunk) });
  });
  // Longest first: ladder scenarios cost most.
  const started = Date.now();
  const results: Outcome[][][] = all.map(() => JUDGES.map(() => []));
  let done = 0;
  await new Promise<void>((resolveAll, reject) => {
    let next = 0;
    let live = workers;
    for (let w = 0; w < workers; w++) {
      // A CommonJS bootstrap that registers tsx, then loads this file in the worker.
      const bootstrap = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(__filename)});`;
      const worker = new Worker(bootstrap, { eval: true, workerData: { quick } });
      const feed = () => {
        if (next < tasks.length) worker.postMessage(tasks[next++]);
        else {
          worker.postMessage(null);
          if (--live === 0) resolveAll();
        }
      };
      worker.on('message', (r: TaskResult) => {
        r.outcomes.forEach((o, j) => results[r.scenario]![j]!.push(...o));
        done++;
        if (done % 50 === 0) process.stderr.write(`  ${done}/${tasks.length} tasks, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
        feed();
      });
      worker.on('error', reject);
      feed();
    }
  });
  const seconds = (Date.now() - started) / 1000;
  const report = summarize(all, results);
  printTable(report);
  const targets = checkTargets(report);
  console.log('\nTargets (our judge):');
  for (const t of targets) console.log(`  [${t.met ? 'met' : 'NOT met'}] ${t.target}: ${t.measured}`);
  console.log(`\n${all.reduce((s, x) => s + x.reps, 0)} rollouts × ${JUDGES.length} judges in ${seconds.toFixed(0)} s on ${workers} worker(s)${quick ? ' (--quick)' : ''}.`);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, JSON.stringify({ quick, seconds, workers, judges: JUDGES.map((j) => j.name), scenarios: report, targets }, null, 2) + '\n');
  console.log(`wrote ${outPath}`);
}

interface Row {
  scenario: string;
  group: Scenario['group'];
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
  harmedMean: number;
}

function summarize(all: Scenario[], results: Outcome[][][]): Row[] {
  const rows: Row[] = [];
  all.forEach((s, i) => {
    JUDGES.forEach((judge, j) => {
      const o = results[i]![j]!;
      const rb = o.filter((x) => x.rolledBack);
      const promoted = o.filter((x) => x.promoted);
      const minutes = (x: Outcome) => ((x.decidedAt + 1) * INTERVAL_SECONDS) / 60;
      rows.push({
        scenario: s.id,
        group: s.group,
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
        delayP90: roundN(quantile(rb.map((x) => x.candidateRequestsSinceOnset), 0.9)),
        promoteMinutesP50: roundN(quantile(promoted.map(minutes), 0.5)),
        promoteMinutesP90: roundN(quantile(promoted.map(minutes), 0.9)),
        harmedMean: Math.round(o.reduce((sum, x) => sum + x.harmed, 0) / o.length),
      });
    });
  });
  return rows;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const roundN = (x: number | null) => (x === null ? null : Math.round(x));
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function printTable(rows: Row[]): void {
  const header = ['scenario', 'judge', 'n', 'rollback [95% CI]', '<25%', 'promo', 'held', 'delay p50/p90', 'promote min p50/p90', 'harmed'];
  const lines = rows.map((r) => [
    r.scenario,
    r.judge,
    String(r.n),
    `${pct(r.rollbackRate)} [${pct(r.rollbackCI[0])}, ${pct(r.rollbackCI[1])}]`,
    r.schedule === 'ladder' ? String(r.rollbackBefore25) : '',
    String(r.promoted),
    String(r.held),
    r.group === 'A/A' ? '' : `${r.delayP50 ?? '-'}/${r.delayP90 ?? '-'}`,
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

function checkTargets(rows: Row[]): TargetCheck[] {
  const ours = rows.filter((r) => r.judge === 'sequential');
  const out: TargetCheck[] = [];
  const aa = ours.filter((r) => r.group === 'A/A' && !/pods=1 /.test(r.scenario));
  const worst = aa.reduce((w, r) => (r.rollbackRate > w.rollbackRate ? r : w), aa[0]!);
  out.push({
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
  const lat = ours.find((r) => r.scenario === 'latency p95 x1.25 onset=0 ladder');
  if (lat) {
    const power = lat.rollbackBefore25 / lat.n;
    out.push({
      target: 'p95 ×1.25 caught with ≥ 95% power before the 25% step (ladder)',
      met: power >= 0.95,
      measured: `${lat.rollbackBefore25}/${lat.n} = ${pct(power)} before 25%; ${pct(lat.rollbackRate)} overall`,
    });
  }
  // Power vs each baseline at an equal or lower false-rollback rate.
  const aaRate = (judge: string) => {
    const r = rows.filter((x) => x.judge === judge && x.group === 'A/A' && !/pods=1 /.test(x.scenario));
    return r.reduce((s, x) => s + x.rollbacks, 0) / r.reduce((s, x) => s + x.n, 0);
  };
  const abRows = (judge: string) => rows.filter((x) => x.judge === judge && x.group !== 'A/A');
  const meanPower = (judge: string) => {
    const r = abRows(judge);
    return r.reduce((s, x) => s + x.rollbackRate, 0) / r.length;
  };
  for (const other of JUDGES.map((j) => j.name).filter((n) => n !== 'sequential')) {
    const ourFr = aaRate('sequential');
    const theirFr = aaRate(other);
    const better = abRows('sequential').filter((r, i) => r.rollbackRate > abRows(other)[i]!.rollbackRate).length;
    const worse = abRows('sequential').filter((r, i) => r.rollbackRate < abRows(other)[i]!.rollbackRate).length;
    out.push({
      // Dominance needs both: our A/A rate no higher AND our power higher in every A/B cell.
      target: `more power than ${other} at an equal or lower false-rollback rate`,
      met: ourFr <= theirFr && worse === 0 && better > 0,
      measured: `A/A false rollback ${pct(ourFr)} vs ${pct(theirFr)}; mean A/B power ${pct(meanPower('sequential'))} vs ${pct(meanPower(other))}; scenarios ours higher/lower: ${better}/${worse}`,
    });
  }
  return out;
}
