import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Typed search attributes that make the Temporal UI's workflow list tell the story. */
export const RolloutTarget = defineSearchAttributeKey('RolloutTarget', SearchAttributeType.KEYWORD);
export const RolloutPhase = defineSearchAttributeKey('RolloutPhase', SearchAttributeType.KEYWORD);
export const CanaryWeight = defineSearchAttributeKey('CanaryWeight', SearchAttributeType.INT);

/** For `temporal server start-dev --search-attribute NAME=TYPE` and operator registration. */
export const SEARCH_ATTRIBUTE_REGISTRATIONS: Record<string, string> = {
  RolloutTarget: 'Keyword',
  RolloutPhase: 'Keyword',
  CanaryWeight: 'Int',
};

/**
 * CanaryWeight is an Int (registered so on every server): a fractional weight is rounded, and a
 * candidate with any traffic at all shows at least 1 (never 0 while it serves, never 100 before
 * it has everything).
 */
export function canaryWeightAttribute(weight: number): number {
  if (weight <= 0) return 0;
  if (weight >= 100) return 100;
  return Math.min(99, Math.max(1, Math.round(weight)));
}
