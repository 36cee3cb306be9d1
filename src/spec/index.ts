import type { z } from 'zod';
import { rolloutRequestSchema, rolloutSpecSchema, unreadAnalysisFields, type RolloutRequest, type RolloutSpec } from './schema';

export * from './schema';
export { baselineMismatch, describeServing, resolveBaseline, servesBaseline, type BaselineResolution } from './baseline';
export { parseDuration, formatDuration } from './duration';
export { URL_ALLOW_LIST_SETTING, describeUrlAllowList, parseUrlAllowList, specUrls, urlAllowListIssues, urlAllowed, urlRefusal, type SpecWithUrls, type UrlAllowList, type UrlPattern } from './url-allow-list';

/** One problem with an input: where (dotted path, e.g. `steps.1.weight`) and what. */
export interface SpecIssue {
  path: string;
  message: string;
}

export type SpecResult = { ok: true; spec: RolloutSpec } | { ok: false; issues: SpecIssue[] };
export type RequestResult = { ok: true; request: RolloutRequest } | { ok: false; issues: SpecIssue[] };

/** Validates raw input (parsed JSON) into a complete spec, collecting every problem with its path. */
export function parseRolloutSpec(input: unknown): SpecResult {
  const result = parse(rolloutSpecSchema, input);
  return result.ok ? { ok: true, spec: result.value } : result;
}

/**
 * Validates a rollout request as the API takes it: a spec whose `baseline` may be left out, to be
 * taken from the target's live route (resolveBaseline) before the rollout starts.
 */
export function parseRolloutRequest(input: unknown): RequestResult {
  const result = parse(rolloutRequestSchema, input);
  return result.ok ? { ok: true, request: result.value } : result;
}

function parse<S extends z.ZodType>(schema: S, input: unknown): { ok: true; value: z.output<S> } | { ok: false; issues: SpecIssue[] } {
  const result = schema.safeParse(input);
  const unread = unreadAnalysisFields(input).map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  if (result.success && unread.length === 0) return { ok: true, value: result.data };
  const invalid = result.success
    ? []
    : result.error.issues.map((issue) => ({
        path: issue.path.map(String).join('.') || '(root)',
        message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
      }));
  return { ok: false, issues: [...invalid, ...unread] };
}
