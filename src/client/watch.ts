/**
 * Watching a rollout: polls GET /v1/rollouts/:id and yields each change, until the rollout ends
 * (the last status yielded is final) or the signal aborts (the generator just returns).
 *
 * Trouble on the way — the API unreachable, a 5xx, a 408/429 — is yielded once per distinct
 * message as a `trouble` event, and polling goes on; any other 4xx (404, 401, 400) can only be
 * fixed by the caller and is thrown.
 */
import { isFinal, type Decision, type RolloutStatus } from '../workflows/status';
import type { Waiting } from '../workflows/step-policy';
import { ApiResponseError, type CanaryClient } from './api';

export interface WatchOptions {
  /** Time between polls, ms (default 500). */
  pollMs?: number;
  signal?: AbortSignal;
  /** Watch this run of the rollout (default: the latest). */
  runId?: string;
}

/** What a new status changed against the one yielded before it. */
export interface StatusChanges {
  /** The first status of the watch (every flag below is then true where it has a value). */
  first: boolean;
  phase: boolean;
  /** The weights moved (a step began, or the rollback put them back). */
  weights: boolean;
  /** `step.waiting` appeared, disappeared, or changed its reason or message (not only its estimate). */
  waiting: boolean;
  /** `stale` appeared, disappeared or changed. */
  stale: boolean;
  /** An activity began being retried, or a retried one (by name) is retried no more. */
  retrying: boolean;
  /** Decisions not seen before (`seq` above the newest one yielded), oldest first. */
  decisions: Decision[];
  /** The rollout has ended: this is the last event. */
  final: boolean;
}

export type WatchEvent =
  | { kind: 'status'; status: RolloutStatus; previous?: RolloutStatus; changes: StatusChanges }
  | { kind: 'trouble'; message: string; error: unknown };

/** Whether an error of a poll is worth polling on (the API may come back), or only the caller can fix it. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof ApiResponseError)) return true; // unreachable, not JSON, timeouts
  return err.status >= 500 || err.status === 408 || err.status === 429;
}

const retryingKey = (s: RolloutStatus | undefined) => (s?.retrying ?? []).map((r) => r.activity).join(',');

const waitingKey = (w: Waiting | undefined) => (w ? `${w.reason}\u0000${w.message.replace(/\d+/g, '#')}` : '');

/** The changes from `previous` to `status` (`previous` undefined: the first status). */
export function changesBetween(previous: RolloutStatus | undefined, status: RolloutStatus): StatusChanges {
  const lastSeq = previous?.decisions.at(-1)?.seq ?? 0;
  return {
    first: previous === undefined,
    phase: previous?.phase !== status.phase,
    weights: !previous || previous.weights.baseline !== status.weights.baseline || previous.weights.candidate !== status.weights.candidate,
    // Numbers inside the message (checks so far, requests still needed) move with every check.
    waiting: previous ? waitingKey(previous.step.waiting) !== waitingKey(status.step.waiting) : status.step.waiting !== undefined,
    stale: previous ? previous.stale !== status.stale : status.stale !== undefined,
    retrying: retryingKey(previous) !== retryingKey(status),
    decisions: status.decisions.filter((d) => d.seq > lastSeq),
    final: isFinal(status.phase),
  };
}

export async function* watchRollout(client: CanaryClient, id: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent, RolloutStatus | undefined> {
  const pollMs = options.pollMs ?? 500;
  let previous: RolloutStatus | undefined;
  let previousJson: string | undefined;
  let trouble: string | undefined;
  for (;;) {
    if (options.signal?.aborted) return previous;
    try {
      const status = await client.get(id, options.runId ? { runId: options.runId } : {});
      trouble = undefined;
      const json = JSON.stringify(status);
      if (json !== previousJson) {
        const changes = changesBetween(previous, status);
        const event: WatchEvent = { kind: 'status', status, changes, ...(previous ? { previous } : {}) };
        previous = status;
        previousJson = json;
        yield event;
        if (changes.final) return status;
      }
    } catch (err) {
      if (!isTransient(err)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (message !== trouble) {
        trouble = message;
        yield { kind: 'trouble', message, error: err };
      }
    }
    if (!(await sleep(pollMs, options.signal))) return previous;
  }
}

/** Resolves true after `ms`, or false at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
