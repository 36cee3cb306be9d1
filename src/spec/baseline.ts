/**
 * The live baseline: a spec's baseline compared with what the target's router serves now, and
 * the baseline a request leaves out taken from it. Pure (types only), so the API checks a start
 * with it and the workflow checks the same again when it captures the route before its first change.
 */
import type { ModelVersion, TrafficRoute } from '../activities/types';
import type { RolloutRequest, RolloutSpec } from './schema';

/** The versions that get traffic: a version at 0% (left in a route by a promotion) serves nothing. */
export function servingVersions(route: TrafficRoute): TrafficRoute['versions'] {
  return route.versions.filter((v) => v.weight > 0);
}

/**
 * Whether `route` serves `baseline` alone: its version at 100% under the same URL (as the
 * gateway reads it: trailing slashes aside). Another version, a split or another URL do not.
 */
export function servesBaseline(route: TrafficRoute, baseline: ModelVersion): boolean {
  const serving = servingVersions(route);
  const only = serving[0];
  return serving.length === 1 && only !== undefined && only.version === baseline.version && only.weight === 100 && sameUrl(only.url, baseline.url);
}

/** Why `live` is not `baseline` alone, naming what it serves; undefined when it is, or when there is no live route. */
export function baselineMismatch(baseline: ModelVersion, live: TrafficRoute | undefined): string | undefined {
  if (!live || servesBaseline(live, baseline)) return undefined;
  return `target ${live.target} serves ${describeServing(live)}, not the baseline ${baseline.version} at 100%${baseline.url ? ` (${baseline.url})` : ''}`;
}

/** `v1 100% (http://…:9001)`, or `v1 90% (…), v2 10% (…)`: what a route sends where. */
export function describeServing(route: TrafficRoute): string {
  const serving = servingVersions(route);
  return (serving.length > 0 ? serving : route.versions).map((v) => `${v.version} ${v.weight}%${v.url ? ` (${v.url})` : ''}`).join(', ');
}

export type BaselineResolution =
  | { ok: true; spec: RolloutSpec }
  /** The live route is not the baseline the request names. */
  | { ok: false; mismatch: string; live: TrafficRoute }
  /** The request left the baseline out and the live route cannot give one (or gives the candidate). */
  | { ok: false; issues: Array<{ path: string; message: string }> };

/**
 * The complete spec of a request, given what its target serves now (`live`; undefined: no route):
 * a baseline given must be what serves (when anything does); one left out is the live route's
 * one serving version, and must not be the candidate.
 */
export function resolveBaseline(request: RolloutRequest, live: TrafficRoute | undefined): BaselineResolution {
  const { target, baseline, ...rest } = request;
  const withBaseline = (chosen: ModelVersion): BaselineResolution => ({ ok: true, spec: { target, baseline: chosen, ...rest } });
  if (baseline) {
    const mismatch = baselineMismatch(baseline, live);
    return mismatch && live ? { ok: false, mismatch, live } : withBaseline(baseline);
  }
  const refuse = (path: string, message: string): BaselineResolution => ({ ok: false, issues: [{ path, message }] });
  const leftOut = `baseline was left out, so it is taken from what target ${target} serves now`;
  if (!live) return refuse('baseline', `${leftOut}, but the target has no live route: give baseline {"version", "url"}`);
  const serving = servingVersions(live);
  if (serving.length !== 1 || !serving[0]) {
    return refuse('baseline', `${leftOut}, but it serves a split of several versions (${describeServing(live)}), not one baseline: put the target on one version first`);
  }
  // A URL only for routers that send traffic to URLs (the candidate then has one too); the others name their backends.
  const url = request.candidate.url !== undefined ? serving[0].url : undefined;
  const taken = { version: serving[0].version, ...(url !== undefined ? { url } : {}) };
  if (taken.version === request.candidate.version) {
    return refuse('candidate.version', `candidate.version must differ from the baseline: target ${target} already serves ${describeServing(live)}`);
  }
  return withBaseline(taken);
}

/** The same URL, trailing slashes aside; a baseline without one (the router knows where it serves) matches any. */
function sameUrl(live: string | undefined, baseline: string | undefined): boolean {
  if (baseline === undefined) return true;
  return live !== undefined && live.replace(/\/+$/, '') === baseline.replace(/\/+$/, '');
}
