/**
 * The rollout workflow's public face: its name, id scheme, query and updates. The API and tests
 * import these definitions, never string names.
 */
import type { UpdateDefinition } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
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

/**
 * What an operator sends with an action: why (abort), and who (recorded in the rollout's events
 * and sent in the webhook event). The API sets `by` to the token's name; a signal or update sent
 * to Temporal without one is recorded as by "temporal" (TEMPORAL_ACTOR).
 */
export interface OperatorRequest {
  reason?: string;
  by?: string;
}

/** Who an action or a start came from when its payload does not say: someone with access to Temporal itself. */
export const TEMPORAL_ACTOR = 'temporal';
export type AbortRequest = OperatorRequest;

export const OPERATOR_ACTIONS = ['pause', 'resume', 'abort', 'promote', 'approve'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/**
 * Each action exists twice, under the same name: as an Update (the API: answered with the
 * status, or rejected when it does not apply) and as a Signal (`temporal workflow signal`, the
 * Temporal UI: recorded in the rollout's events, applied when it applies, ignored with a note
 * when not; never failing the workflow).
 */
// Typed for the client as they have always been called; the workflow's handlers also read an
// optional OperatorRequest from any of them (who did it): OPERATOR_UPDATES_WITH_REQUEST.
export const pauseUpdate = defineUpdate<RolloutStatus, []>('pause');
export const resumeUpdate = defineUpdate<RolloutStatus, []>('resume');
export const abortUpdate = defineUpdate<RolloutStatus, [AbortRequest]>('abort');
/** Skip the remaining steps: the candidate takes 100% now. */
export const promoteUpdate = defineUpdate<RolloutStatus, []>('promote');
/** Let a `manual` gate pass. */
export const approveUpdate = defineUpdate<RolloutStatus, []>('approve');

export const OPERATOR_UPDATES = { pause: pauseUpdate, resume: resumeUpdate, abort: abortUpdate, promote: promoteUpdate, approve: approveUpdate } as const;
/** The same updates, typed with the OperatorRequest every handler reads (the API sends `by` with each). */
export const OPERATOR_UPDATES_WITH_REQUEST = OPERATOR_UPDATES as unknown as Record<OperatorAction, UpdateDefinition<RolloutStatus, [OperatorRequest], string>>;
export const OPERATOR_SIGNALS = {
  pause: defineSignal<[OperatorRequest?]>('pause'),
  resume: defineSignal<[OperatorRequest?]>('resume'),
  abort: defineSignal<[AbortRequest?]>('abort'),
  promote: defineSignal<[OperatorRequest?]>('promote'),
  approve: defineSignal<[OperatorRequest?]>('approve'),
} as const;
