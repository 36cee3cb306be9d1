/**
 * The committed rollout histories (test/replay/histories/*.json): which kinds there are, and how
 * they are read back for replay. Shared by the replay test and scripts/record-histories.ts.
 *
 * A file is named `<kind>.json`, or `<kind>.<run>.json` for each run of a rollout that continued
 * as new (run 1 first). Its content is a Temporal history in the JSON form other Temporal tools
 * use (`temporal workflow show --output json`, the Temporal UI's download), as written by
 * `historyToJSON` from @temporalio/common.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON, type History } from './history-json';
import { rolloutWorkflowId } from '../../src/workflows/messages';
import type { RolloutInput } from '../../src/workflows/rollout';

/** Every kind of rollout that must have a recorded history; the replay test fails if one is missing. */
export const HISTORY_KINDS = [
  'promoted',
  'rolled-back',
  'aborted',
  'paused-resumed',
  'continued-as-new',
  'signalled',
  'approved',
  'cancelled',
  'metrics-outage',
] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

export const HISTORIES_DIR = path.join(__dirname, 'histories');

/** The target a recorded rollout of `kind` runs against: its workflow id is `rollout-replay-<kind>`. */
export function replayTarget(kind: HistoryKind): string {
  return `replay-${kind}`;
}

export function historyFileName(kind: HistoryKind, run?: number): string {
  return run === undefined ? `${kind}.json` : `${kind}.${run}.json`;
}

export interface RecordedHistory {
  /** The file name, e.g. `continued-as-new.2.json`: what a failure names. */
  name: string;
  kind: string;
  workflowId: string;
  history: History;
}

/** Every history in `dir`, in file-name order. */
export function loadHistories(dir = HISTORIES_DIR): RecordedHistory[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, name), 'utf8')));
      return { name, kind: name.split('.')[0]!, workflowId: workflowIdOf(name, history), history };
    });
}

/**
 * Histories do not hold their workflow's id, and the rollout keeps it (its state's id): it is read
 * back from the spec in the run's input, as the rollout's own id scheme derives it.
 */
function workflowIdOf(name: string, history: History): string {
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  if (!payload) throw new Error(`${name}: the first event is not a rollout's start with its input`);
  const input = defaultPayloadConverter.fromPayload<RolloutInput>(payload);
  return rolloutWorkflowId(input.spec.target);
}
