import { rolloutSpecSchema, unreadAnalysisFields, type RolloutSpec } from './schema';

export * from './schema';
export { parseDuration, formatDuration } from './duration';

/** One problem with an input: where (dotted path, e.g. `steps.1.weight`) and what. */
export interface SpecIssue {
  path: string;
  message: string;
}

export type SpecResult = { ok: true; spec: RolloutSpec } | { ok: false; issues: SpecIssue[] };

/** Validates raw input (parsed JSON) into a spec, collecting every problem with its path. */
export function parseRolloutSpec(input: unknown): SpecResult {
  const result = rolloutSpecSchema.safeParse(input);
  const unread = unreadAnalysisFields(input).map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  if (result.success && unread.length === 0) return { ok: true, spec: result.data };
  const invalid = result.success
    ? []
    : result.error.issues.map((issue) => ({
        path: issue.path.map(String).join('.') || '(root)',
        message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
      }));
  return { ok: false, issues: [...invalid, ...unread] };
}
