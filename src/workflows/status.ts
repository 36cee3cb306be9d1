/**
 * What a rollout reports about itself: phases, decisions, outcome. Pure data and pure
 * functions, shared by the workflow (which owns the state) and the API (which shows it).
 */
import type { VersionSummary } from '../analysis/metrics';
import type { Verdict } from '../analysis/judge';
import type { RolloutSpec } from '../spec/schema';
import type { StepDecision, Waiting } from './step-policy';

export const FINAL_PHASES = ['promoted', 'rolled_back', 'aborted', 'failed'] as const;
export type FinalPhase = (typeof FINAL_PHASES)[number];
export type Phase = 'progressing' | 'paused' | 'awaiting_approval' | 'rolling_back' | FinalPhase;

export function isFinal(phase: Phase): phase is FinalPhase {
  return (FINAL_PHASES as readonly string[]).includes(phase);
}

export interface Weights {
  baseline: number;
  candidate: number;
}

/** One metric check: when, at which step and weight, the verdict and the numbers behind it. */
export interface Decision {
  /** 1-based number of the check in the rollout; the cursor for paging decisions. */
  seq: number;
  /** The decision in plain words, first: what was seen and what happens next (summary.ts). */
  summary?: string;
  at: string;
  step: number;
  weight: number;
  verdict: Verdict;
  reasons: string[];
  metrics: { baseline: VersionSummary; candidate: VersionSummary };
  evidence?: Record<string, unknown>;
  /** Failed checks counted so far in this rollout, this one included. */
  failedChecks: number;
  /** What the step policy made of the check: the step goes on baking, is extended, holds, ends, or the rollout rolls back. */
  then?: { action: StepDecision['kind']; reason?: string };
  /** Why the step waits after this check (step-policy.ts). */
  waiting?: Waiting;
}

/**
 * What is left of decisions older than those the status keeps whole: counts only. The rollout's
 * Temporal history keeps every decision in full.
 */
export interface EarlierDecisions {
  count: number;
  verdicts: Record<Verdict, number>;
  firstAt?: string;
  lastAt?: string;
}

/** Which decisions a status carries: the `limit` newest with `seq` below `before` (all kept, when omitted). */
export interface DecisionPageRequest {
  limit?: number;
  before?: number;
}

export interface DecisionPage {
  /** Decisions made in the whole rollout. */
  total: number;
  /** Kept whole (the newest); older ones are only counted in `earlier`. */
  kept: number;
  /** Pass as `before` to read the next older page; absent on the oldest kept page. */
  nextBefore?: number;
  earlier: EarlierDecisions;
}

/** While the metric source cannot be read: checks hold (inconclusive) until `rollbackAt`. */
export interface MetricsOutage {
  since: string;
  failedReads: number;
  lastError: string;
  /** When the rollout rolls back if the metrics are still unreadable (analysis.maxMetricsOutage). */
  rollbackAt: string;
}

/** An activity Temporal is retrying for the rollout (from the server's record, added by the API). */
export interface ActivityRetry {
  /** The activity, e.g. setTrafficWeights (restoring traffic while rolling back). */
  activity: string;
  attempt: number;
  lastError: string;
  /** When the next attempt is due, when one is scheduled. */
  nextAttemptAt?: string;
}

/** An operator action as the rollout received it: applied, or not applicable (signals only) and why. */
export interface OperatorEvent {
  at: string;
  action: 'pause' | 'resume' | 'abort' | 'promote' | 'approve';
  via: 'update' | 'signal';
  /** Who: the API token's name ("anonymous" on an API without tokens), or "temporal" for a signal/update sent to Temporal without one. Absent in events recorded by older versions. */
  by?: string;
  reason?: string;
  applied: boolean;
  note: string;
}

export interface Outcome {
  result: FinalPhase;
  reason: string;
  at: string;
}

export interface RolloutStatus {
  id: string;
  target: string;
  phase: Phase;
  baseline: { version: string; url?: string };
  candidate: { version: string; url?: string };
  weights: Weights;
  step: {
    /** Index (0-based) of the current step; equals `total` once every step is done. */
    index: number;
    total: number;
    /** The current step's weight, bake and how much of it has elapsed (ms, pauses excluded). */
    weight: number;
    bakeMs: number;
    bakedMs: number;
    /**
     * Set while the rollout holds this step past its bake and extensions because going further
     * needs evidence it does not have yet (the sequential judge's readiness gate). Checks go on:
     * it rolls back on a failing one and moves on by itself once the evidence is there.
     */
    holding?: string;
    /**
     * What the step waits for, from the first check that did not end it: a stable `reason`
     * (thin_traffic, needs_evidence, inconclusive, srm, metrics_missing, failed_check, paused,
     * awaiting_approval), one plain sentence, and where the judge can tell, the candidate
     * requests (and seconds at the current traffic) still needed.
     */
    waiting?: Waiting;
  };
  failedChecks: number;
  /** The requested page of decisions, oldest first (by default every decision kept whole). */
  decisions: Decision[];
  decisionPage: DecisionPage;
  metricsOutage?: MetricsOutage;
  /** Operator actions received (the newest 50), applied or not. */
  events: OperatorEvent[];
  startedAt: string;
  /** Who started it: the API token's name ("anonymous" without tokens), or "temporal" when started through Temporal directly. Absent for rollouts started by older versions. */
  startedBy?: string;
  updatedAt: string;
  outcome?: Outcome;
  links?: { temporalUi: string };
  /** Set by the API when no worker answered and the status was rebuilt from the server's record. */
  stale?: string;
  /** Set by the API while Temporal retries a failed activity of the rollout (a router or metric source down). */
  retrying?: ActivityRetry[];
  spec: RolloutSpec;
}

/** A line of the rollout list. */
export interface RolloutSummary {
  id: string;
  runId: string;
  target: string;
  phase: Phase | 'unknown';
  canaryWeight?: number;
  startedAt?: string;
  closedAt?: string;
  links: { temporalUi: string };
}

/** The page of `decisions` (oldest first) that `request` asks for. */
export function pageOfDecisions(decisions: readonly Decision[], request: DecisionPageRequest | undefined): { decisions: Decision[]; nextBefore?: number } {
  // The request may come from anyone who can query the workflow (Temporal CLI/UI): read it defensively.
  const limit = typeof request?.limit === 'number' && request.limit >= 0 ? Math.floor(request.limit) : undefined;
  const before = typeof request?.before === 'number' ? request.before : Number.POSITIVE_INFINITY;
  let end = decisions.length;
  while (end > 0 && decisions[end - 1]!.seq >= before) end--;
  const start = limit === undefined ? 0 : Math.max(0, end - limit);
  const page = decisions.slice(start, end);
  return start > 0 ? { decisions: page, nextBefore: decisions[start]!.seq } : { decisions: page };
}

/** A status narrowed to one page of its decisions (the API's `?decisions=&before=`). */
export function withDecisionPage(status: RolloutStatus, request: DecisionPageRequest): RolloutStatus {
  if (request.limit === undefined && request.before === undefined) return status;
  const { decisions, nextBefore } = pageOfDecisions(status.decisions, request);
  return { ...status, decisions, decisionPage: { ...status.decisionPage, ...(nextBefore === undefined ? {} : { nextBefore }) } };
}

/**
 * A decision's reasons as one text: sentences (the sequential judge's end with a full stop) are
 * run on with a space, bare clauses (the threshold judge's) separated by semicolons.
 */
export function reasonsText(reasons: readonly string[]): string {
  return reasons.map((r, i) => (i === reasons.length - 1 || /[.!?]$/.test(r) ? r : `${r};`)).join(' ');
}
