/**
 * Records the histories the replay test (test/replay/replay.test.ts) replays: one real run of
 * each kind of rollout on Temporal's time-skipping test server, with scripted metrics, each run's
 * history written to test/replay/histories/<kind>.json (<kind>.<run>.json for every run of a
 * rollout that continued as new).
 *
 *   npm run replay:record                  # every kind
 *   npm run replay:record -- signalled     # only the kinds named
 *
 * Record a kind only when it is new (a rollout path no history covers yet). Never re-record an
 * existing history to make a failing replay pass: the failure means rollouts running now, with
 * histories like it, would break on the new code (see the top of the replay test).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { History } from '../test/replay/history-json';
import { historyToJSON } from '../test/replay/history-json';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import type { RolloutSpec, RolloutSpecInput } from '../src/spec';
import { OPERATOR_SIGNALS, abortUpdate, approveUpdate, pauseUpdate, promoteUpdate, resumeUpdate, rolloutWorkflowId, statusQuery } from '../src/workflows/messages';
import type { rollout } from '../src/workflows/rollout';
import type { FinalPhase, RolloutStatus } from '../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics, fixedAdapters, type TrafficProfile } from '../test/helpers/adapters';
import { makeSpec } from '../test/helpers/specs';
import { bundleRolloutWorkflows, createTimeSkippingEnv, uniqueTaskQueue } from '../test/helpers/temporal';
import { HISTORIES_DIR, HISTORY_KINDS, historyFileName, replayTarget, type HistoryKind } from '../test/replay/history-files';

type Handle = WorkflowHandle<typeof rollout>;

interface Drive {
  handle: Handle;
  /** The scripted metric source the rollout reads. */
  metrics: ScriptedMetrics;
  /** Skips workflow time in small hops until the rollout's status satisfies `ok`. */
  until(ok: (s: RolloutStatus) => boolean): Promise<RolloutStatus>;
  sleep(duration: Duration): Promise<void>;
}

interface Scenario {
  spec: Partial<RolloutSpecInput>;
  /** The candidate's traffic, per metric read (healthy when omitted). */
  candidate?: TrafficProfile | ((read: number) => TrafficProfile);
  historyLimit?: number;
  /** What operators do while it runs; the rollout then runs to its end. */
  drive?(d: Drive): Promise<void>;
  /** How it must end, and anything else that makes the history the kind it is named after. */
  expect: { phase: FinalPhase; reason?: RegExp; runs?: number; events?: number };
}

const healthy: TrafficProfile = { requests: 200, errorRate: 0.001, latencyMs: 120 };
const failing: TrafficProfile = { requests: 200, errorRate: 0.5, latencyMs: 2_000 };

// Small histories: a one-minute check interval, two-minute bakes, a handful of checks.
const analysis = { judge: 'threshold', interval: '1m', minRequests: 50, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } } as const;
const twoSteps: RolloutSpecInput['steps'] = [{ weight: 10, bake: '2m' }, { weight: 100 }];
const threeSteps: RolloutSpecInput['steps'] = [{ weight: 10, bake: '2m' }, { weight: 50, bake: '2m' }, { weight: 100 }];
const gated: RolloutSpecInput['steps'] = [{ weight: 10, bake: '2m', gate: 'manual' }, { weight: 50, bake: '2m' }, { weight: 100 }];

const SCENARIOS: Record<HistoryKind, Scenario> = {
  // Every step passes; the webhook gets each phase and decision (notify activities in the history).
  promoted: {
    spec: { steps: twoSteps, analysis, notify: { webhook: 'http://127.0.0.1:9/hook' } },
    expect: { phase: 'promoted', reason: /every step passed/ },
  },
  // Failed checks up to the failure limit: compensation restores the baseline.
  'rolled-back': {
    spec: { steps: threeSteps, analysis },
    candidate: failing,
    expect: { phase: 'rolled_back' },
  },
  // Aborted by an update after the first check.
  aborted: {
    spec: { steps: threeSteps, analysis },
    drive: async ({ handle, until }) => {
      await until((s) => s.decisions.length >= 1);
      await handle.executeUpdate(abortUpdate, { args: [{ reason: 'replay history: aborted', by: 'recorder' }] });
    },
    expect: { phase: 'aborted', reason: /replay history: aborted/, events: 1 },
  },
  // Paused and resumed by updates mid-bake; the bake clock stands still while paused.
  'paused-resumed': {
    spec: { steps: twoSteps, analysis },
    drive: async ({ handle, until, sleep }) => {
      await until((s) => s.decisions.length >= 1);
      await handle.executeUpdate(pauseUpdate, { args: [] });
      await sleep('10m');
      await handle.executeUpdate(resumeUpdate, { args: [] });
    },
    expect: { phase: 'promoted', events: 2 },
  },
  // A small history limit: the rollout continues as new between checks, its state carried over.
  'continued-as-new': {
    spec: { steps: threeSteps, analysis },
    historyLimit: 30,
    expect: { phase: 'promoted', runs: 2 },
  },
  // Every action as a signal: pause, one that does not apply (recorded, ignored), a nonsense
  // payload, resume, approval at a manual gate, then promotion.
  signalled: {
    spec: { steps: gated, analysis },
    drive: async ({ handle, until }) => {
      await until((s) => s.decisions.length >= 1);
      await handle.signal(OPERATOR_SIGNALS.pause, { by: 'alice', reason: 'looking at a dashboard' });
      await until((s) => s.phase === 'paused');
      await handle.signal(OPERATOR_SIGNALS.approve, { by: 'bob' });
      await handle.signal(OPERATOR_SIGNALS.resume as never, 42 as never);
      await until((s) => s.phase === 'awaiting_approval');
      await handle.signal(OPERATOR_SIGNALS.approve, { by: 'carol' });
      await until((s) => s.step.index === 1 && s.decisions.some((d) => d.step === 1));
      await handle.signal(OPERATOR_SIGNALS.promote, { by: 'dave' });
    },
    expect: { phase: 'promoted', reason: /promoted by operator/, events: 5 },
  },
  // A manual gate approved by update, one update rejected by its validator, promotion by update.
  approved: {
    spec: { steps: gated, analysis },
    drive: async ({ handle, until }) => {
      await until((s) => s.phase === 'awaiting_approval');
      await handle.executeUpdate(resumeUpdate, { args: [] }).then(
        () => Promise.reject(new Error('resume while awaiting approval was accepted')),
        () => undefined, // rejected by the validator: not in the history
      );
      await handle.executeUpdate(approveUpdate, { args: [] });
      await until((s) => s.step.index === 1 && s.decisions.some((d) => d.step === 1));
      await handle.executeUpdate(promoteUpdate, { args: [] });
    },
    expect: { phase: 'promoted', reason: /promoted by operator/, events: 2 },
  },
  // The workflow itself cancelled (Temporal UI, `temporal workflow cancel`): compensation runs.
  cancelled: {
    spec: { steps: threeSteps, analysis },
    drive: async ({ handle, until }) => {
      await until((s) => s.decisions.length >= 1);
      await handle.cancel();
    },
    expect: { phase: 'aborted', reason: /rollout workflow cancelled/ },
  },
  // The metric source goes down after the first reads: inconclusive checks (failed activities
  // in the history), then a rollback once the outage outlasts analysis.maxMetricsOutage.
  'metrics-outage': {
    spec: { steps: [{ weight: 10, bake: '10m' }, { weight: 100 }], analysis: { ...analysis, maxMetricsOutage: '2m' } },
    drive: async ({ until, metrics }) => {
      await until((s) => s.decisions.length >= 1);
      metrics.failing = true;
    },
    expect: { phase: 'rolled_back', reason: /metric/i },
  },
};

async function record(env: TestWorkflowEnvironment, bundle: WorkflowBundleWithSourceMap, kind: HistoryKind): Promise<string[]> {
  const scenario = SCENARIOS[kind];
  const spec: RolloutSpec = makeSpec({ ...scenario.spec, target: replayTarget(kind) });
  const metrics = new ScriptedMetrics(scenario.candidate ?? healthy);
  const taskQueue = uniqueTaskQueue(`record-${kind}`);
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: createActivities(fixedAdapters({ router: new RecordingRouter(), metrics, notifier: new RecordingNotifier() })),
  });
  const workflowId = rolloutWorkflowId(spec.target);
  const runIds = await worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof rollout>('rollout', { taskQueue, workflowId, args: [{ spec, historyLimit: scenario.historyLimit }] });
    try {
      const until = async (ok: (s: RolloutStatus) => boolean) => {
        for (let i = 0; i < 300; i++) {
          const s = await handle.query(statusQuery);
          if (ok(s)) return s;
          await env.sleep('20s');
        }
        throw new Error(`${kind}: condition not reached; status ${JSON.stringify(await handle.query(statusQuery))}`);
      };
      await scenario.drive?.({ handle, metrics, until, sleep: (d) => env.sleep(d) });
      const result = await handle.result();
      const runs = await runChain(env, workflowId, handle.firstExecutionRunId);
      check(kind, scenario, result, runs.length);
      return runs;
    } catch (err) {
      await handle.terminate('recording failed').catch(() => undefined);
      throw err;
    }
  });
  const histories: History[] = [];
  for (const runId of runIds) histories.push(await env.client.workflow.getHandle(workflowId, runId).fetchHistory());
  for (const file of readdirSync(HISTORIES_DIR).filter((f) => f.split('.')[0] === kind)) rmSync(path.join(HISTORIES_DIR, file));
  return histories.map((history, i) => {
    const file = historyFileName(kind, histories.length > 1 ? i + 1 : undefined);
    writeFileSync(path.join(HISTORIES_DIR, file), historyToJSON(history) + '\n');
    return `${file} (${history.events?.length ?? 0} events)`;
  });
}

/** The run ids of a workflow's chain of runs, first to last, following each continue-as-new. */
async function runChain(env: TestWorkflowEnvironment, workflowId: string, firstRunId: string): Promise<string[]> {
  const runs = [firstRunId];
  for (;;) {
    const history = await env.client.workflow.getHandle(workflowId, runs.at(-1)).fetchHistory();
    const next = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) return runs;
    runs.push(next);
  }
}

function check(kind: HistoryKind, scenario: Scenario, result: RolloutStatus, runs: number): void {
  const { phase, reason, events, runs: minRuns } = scenario.expect;
  const problems = [
    result.phase !== phase && `ended ${result.phase}, not ${phase} (${result.outcome?.reason})`,
    reason && !reason.test(result.outcome?.reason ?? '') && `outcome "${result.outcome?.reason}" does not match ${reason}`,
    events !== undefined && result.events.length !== events && `${result.events.length} operator events, not ${events}`,
    minRuns !== undefined && runs < minRuns && `${runs} run(s), not at least ${minRuns}`,
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${kind}: not the history it is meant to be: ${problems.join('; ')}`);
}

async function main(): Promise<void> {
  const requested = process.argv.slice(2);
  const unknown = requested.filter((k) => !(HISTORY_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new Error(`unknown kind(s) ${unknown.join(', ')}; kinds: ${HISTORY_KINDS.join(', ')}`);
  const kinds = requested.length > 0 ? (requested as HistoryKind[]) : [...HISTORY_KINDS];
  Runtime.install({ logger: new DefaultLogger((process.env.TEMPORAL_TEST_LOG_LEVEL ?? 'ERROR') as 'ERROR') });
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const [env, bundle] = await Promise.all([createTimeSkippingEnv(), bundleRolloutWorkflows()]);
  try {
    for (const kind of kinds) {
      const started = Date.now();
      const files = await record(env, bundle, kind);
      console.log(`${kind}: ${files.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error && err.message.startsWith('unknown kind') ? err.message : err);
  process.exit(1);
});
