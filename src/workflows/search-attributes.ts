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
