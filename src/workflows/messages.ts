/**
 * The rollout workflow's public face: its name, id scheme, query and updates. The API and tests
 * import these definitions, never string names.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DecisionPageRequest, RolloutStatus } from './status';

export const ROLLOUT_WORKFLOW = 'rollout';

/** One rollout per target: the workflow id is derived from the target. */
export function rolloutWorkflowId(target: string): string {
  return `rollout-${target}`;
}

/** Failure type of an update rejected because it does not apply in the current phase. */
export const NOT_APPLICABLE = 'NotApplicable';

/** The rollout's status; the optional argument narrows `decisions` to one page (newest `limit` before `before`). */
export const statusQuery = defineQuery<RolloutStatus, [DecisionPageRequest?]>('status');

export interface AbortRequest {
  reason?: string;
}

export const pauseUpdate = defineUpdate<RolloutStatus, []>('pause');
export const resumeUpdate = defineUpdate<RolloutStatus, []>('resume');
export const abortUpdate = defineUpdate<RolloutStatus, [AbortRequest]>('abort');
/** Skip the remaining steps: the candidate takes 100% now. */
export const promoteUpdate = defineUpdate<RolloutStatus, []>('promote');
/** Let a `manual` gate pass. */
export const approveUpdate = defineUpdate<RolloutStatus, []>('approve');
