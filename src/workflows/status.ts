/**
 * What a rollout reports about itself: phases, decisions, outcome. Pure data and pure
 * functions, shared by the workflow (which owns the state) and the API (which shows it).
 */
import type { VersionSummary } from '../analysis/metrics';
import type { Verdict } from '../analysis/judge';
import type { RolloutSpec } from '../spec/schema';

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
  at: string;
  step: number;
  weight: number;
  verdict: Verdict;
  reasons: string[];
  metrics: { baseline: VersionSummary; candidate: VersionSummary };
  evidence?: Record<string, unknown>;
  /** Failed checks counted so far in this rollout, this one included. */
  failedChecks: number;
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
  baseline: { version: string; url: string };
  candidate: { version: string; url: string };
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
  };
  failedChecks: number;
  decisions: Decision[];
  startedAt: string;
  updatedAt: string;
  outcome?: Outcome;
  links?: { temporalUi: string };
  /** Set by the API when no worker answered and the status was rebuilt from the server's record. */
  stale?: string;
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

/**
 * A decision's reasons as one text: sentences (the sequential judge's end with a full stop) are
 * run on with a space, bare clauses (the threshold judge's) separated by semicolons.
 */
export function reasonsText(reasons: readonly string[]): string {
  return reasons.map((r, i) => (i === reasons.length - 1 || /[.!?]$/.test(r) ? r : `${r};`)).join(' ');
}
