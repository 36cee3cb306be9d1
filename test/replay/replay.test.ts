/**
 * Replay-safe deploys: every committed history of a real rollout (test/replay/histories, one per
 * kind: promoted, rolled back, aborted, paused and resumed, continued as new, signalled, ...) is
 * replayed against the current workflow code, bundled from the same path the worker runs
 * (src/worker.ts WORKFLOWS_PATH). A history that no longer replays means rollouts running now
 * would fail their next workflow task after a deploy — a nondeterminism error.
 *
 * Changing workflow code (src/workflows/**, and anything it imports):
 *   - Keep this test green. Changes that do not alter the sequence of commands the workflow
 *     issues (activities scheduled, timers, search-attribute upserts, continue-as-new, the
 *     result) are safe: refactoring, new queries, a change to what a handler records.
 *   - A change that does alter it (a new or reordered activity or timer, a removed step, a
 *     different condition timeout...) must branch with `patched('<change-id>')` from
 *     @temporalio/workflow so that histories written before it take the old path; later, once
 *     no running rollout predates it, `deprecatePatch('<change-id>')`, then remove the branch.
 *   - Re-record (`npm run replay:record -- <kind>`, scripts/record-histories.ts) only to add a
 *     history of a new kind (add it to HISTORY_KINDS in ./history-files.ts and a scenario to the
 *     script). Never re-record an existing history to make this test pass: that hides exactly
 *     the break this test is here to catch.
 */
import path from 'node:path';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { testLogLevel } from '../helpers/dev-server';
import { bundleRolloutWorkflows } from '../helpers/temporal';
import { HISTORY_KINDS, loadHistories, type RecordedHistory } from './history-files';

try {
  Runtime.install({ logger: new DefaultLogger(testLogLevel()) });
} catch {
  // already installed in this process
}

const histories = loadHistories();
let current: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  current = await bundleRolloutWorkflows();
});

interface Failure {
  name: string;
  error: Error;
}

/** Replays `recorded` on one replay worker running `bundle`, one history at a time; what failed, by file. */
async function replay(bundle: WorkflowBundleWithSourceMap, recorded: RecordedHistory[]): Promise<Failure[]> {
  const failures: Failure[] = [];
  let replayed = 0;
  const results = Worker.runReplayHistories(
    { workflowBundle: bundle, replayName: 'replay-test' },
    recorded.map(({ workflowId, history }) => ({ workflowId, history })),
  );
  for await (const result of results) {
    const { name } = recorded[replayed]!; // results come in the order of the histories
    replayed += 1;
    if (result.error) failures.push({ name, error: result.error });
  }
  if (replayed !== recorded.length) throw new Error(`replayed ${replayed} of ${recorded.length} histories`);
  return failures;
}

function describeFailures(failures: Failure[]): string {
  return failures.map(({ name, error }) => `${name}: ${error.name}: ${error.message}`).join('\n');
}

test('there is a whole history of every kind of rollout', () => {
  const kinds = new Set(histories.map((h) => h.kind));
  expect(HISTORY_KINDS.filter((k) => !kinds.has(k))).toEqual([]);
  expect([...kinds].filter((k) => !(HISTORY_KINDS as readonly string[]).includes(k))).toEqual([]);
  for (const { name, history } of histories) {
    const events = history.events ?? [];
    const last = events.at(-1);
    // A history cut short would replay trivially: each must end the run (completed, or continued as new).
    expect({ name, ends: Boolean(last?.workflowExecutionCompletedEventAttributes ?? last?.workflowExecutionContinuedAsNewEventAttributes) }).toEqual({ name, ends: true });
  }
  // A rollout that continued as new: every run, numbered from 1, each but the last continuing.
  const chain = histories.filter((h) => h.kind === 'continued-as-new');
  expect(chain.map((h) => h.name)).toEqual(chain.map((_, i) => `continued-as-new.${i + 1}.json`));
  expect(chain.length).toBeGreaterThanOrEqual(2);
  expect(chain.map((h) => Boolean(h.history.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes))).toEqual(chain.map((_, i) => i < chain.length - 1));
});

test('every recorded rollout history replays on the current workflow code', async () => {
  const failures = await replay(current, histories);
  if (failures.length > 0) {
    throw new Error(
      `${failures.length} of ${histories.length} recorded histories no longer replay: rollouts running now would break on this workflow code. ` +
        `Branch the change with patched() (see the top of test/replay/replay.test.ts); do not re-record.\n${describeFailures(failures)}`,
    );
  }
});

test('a workflow changed incompatibly fails replay, naming the history', async () => {
  const changed = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'fixtures', 'changed-rollout.ts'),
    logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: console.error },
  });
  const some = histories.filter((h) => h.name === 'promoted.json' || h.name === 'signalled.json');
  expect(some).toHaveLength(2);
  const failures = await replay(changed, some);
  expect(failures.map((f) => f.name)).toEqual(['promoted.json', 'signalled.json']);
  for (const { error } of failures) expect(error).toBeInstanceOf(DeterminismViolationError);
  expect(describeFailures(failures)).toMatch(/^promoted\.json: DeterminismViolationError: .*nondetermin/im);
});
