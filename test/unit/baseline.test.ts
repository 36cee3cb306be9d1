/**
 * The live baseline (src/spec/baseline.ts): what counts as "the baseline serves the target", a
 * baseline left out taken from the live route, and the request schema that lets it be left out.
 */
import type { TrafficRoute } from '../../src/activities/types';
import { baselineMismatch, parseRolloutRequest, parseRolloutSpec, resolveBaseline, servesBaseline, type RolloutRequest } from '../../src/spec';
import { newRolloutState, routeToRestore, upgradeState } from '../../src/workflows/state';
import { makeSpec } from '../helpers/specs';

const V1 = { version: 'v1', url: 'http://127.0.0.1:9001' };
const V2 = { version: 'v2', url: 'http://127.0.0.1:9002' };

const route = (...versions: TrafficRoute['versions']): TrafficRoute => ({ target: 'chat', routerState: { salt: 'live-salt' }, versions });

function request(overrides: Record<string, unknown> = {}): RolloutRequest {
  const parsed = parseRolloutRequest({ target: 'chat', baseline: V1, candidate: { version: 'v3', url: 'http://127.0.0.1:9003' }, steps: [{ weight: 100 }], ...overrides });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.request;
}

describe('servesBaseline: the live route is the baseline alone', () => {
  test('the baseline at 100% under the same URL matches, trailing slash or not, whatever the salt', () => {
    expect(servesBaseline(route({ ...V1, weight: 100 }), V1)).toBe(true);
    expect(servesBaseline(route({ ...V1, url: `${V1.url}/`, weight: 100 }), V1)).toBe(true);
  });

  test('a version left at 0% (as a promotion leaves the old one) serves nothing and does not count', () => {
    expect(servesBaseline(route({ ...V2, weight: 0 }, { ...V1, weight: 100 }), V1)).toBe(true);
  });

  test('another version, a split, or the same version under another URL is a mismatch', () => {
    expect(servesBaseline(route({ ...V2, weight: 100 }), V1)).toBe(false);
    expect(servesBaseline(route({ ...V1, weight: 95 }, { ...V2, weight: 5 }), V1)).toBe(false);
    expect(servesBaseline(route({ ...V1, url: 'http://127.0.0.1:9999', weight: 100 }), V1)).toBe(false);
    expect(servesBaseline(route({ ...V1, url: `${V1.url}/v1`, weight: 100 }), V1)).toBe(false);
  });

  test('the mismatch names what serves: versions, weights and URLs', () => {
    expect(baselineMismatch(V1, route({ ...V1, weight: 90 }, { ...V2, weight: 10 }))).toBe(
      'target chat serves v1 90% (http://127.0.0.1:9001), v2 10% (http://127.0.0.1:9002), not the baseline v1 at 100% (http://127.0.0.1:9001)',
    );
    expect(baselineMismatch(V1, undefined)).toBeUndefined();
  });
});

describe('resolveBaseline', () => {
  test('a baseline given: kept when it serves the target or the target has no route; a mismatch otherwise', () => {
    expect(resolveBaseline(request(), route({ ...V1, weight: 100 }))).toMatchObject({ ok: true, spec: { baseline: V1 } });
    expect(resolveBaseline(request(), undefined)).toMatchObject({ ok: true, spec: { baseline: V1 } });
    const live = route({ ...V2, weight: 100 });
    expect(resolveBaseline(request(), live)).toEqual({ ok: false, live, mismatch: expect.stringMatching(/serves v2 100% \(http:\/\/127\.0\.0\.1:9002\)/) });
  });

  test('a baseline left out is the live route\'s one serving version, URL as the router has it', () => {
    const resolved = resolveBaseline(request({ baseline: undefined }), route({ ...V1, weight: 0 }, { ...V2, url: `${V2.url}/`, weight: 100 }));
    expect(resolved).toMatchObject({ ok: true, spec: { target: 'chat', baseline: { version: 'v2', url: `${V2.url}/` }, candidate: { version: 'v3' } } });
    // The spec's keys keep their order: target, baseline, candidate...
    if (resolved.ok) expect(Object.keys(resolved.spec).slice(0, 3)).toEqual(['target', 'baseline', 'candidate']);
  });

  test('left out with no live route, or a split: 400 naming baseline; the candidate already serving: naming candidate.version', () => {
    expect(resolveBaseline(request({ baseline: undefined }), undefined)).toEqual({
      ok: false,
      issues: [{ path: 'baseline', message: expect.stringMatching(/baseline was left out.*target chat.*has no live route/) }],
    });
    expect(resolveBaseline(request({ baseline: undefined }), route({ ...V1, weight: 50 }, { ...V2, weight: 50 }))).toEqual({
      ok: false,
      issues: [{ path: 'baseline', message: expect.stringMatching(/serves a split of several versions \(v1 50% .*, v2 50% .*\)/) }],
    });
    const serving = route({ version: 'v3', url: 'http://127.0.0.1:9003', weight: 100 });
    expect(resolveBaseline(request({ baseline: undefined }), serving)).toEqual({
      ok: false,
      issues: [{ path: 'candidate.version', message: expect.stringMatching(/must differ from the baseline: target chat already serves v3 100%/) }],
    });
  });
});

describe('request and spec schemas', () => {
  test('a request may leave baseline out; a complete spec may not', () => {
    const input = { target: 'chat', candidate: V2, steps: [{ weight: 100 }] };
    const parsed = parseRolloutRequest(input);
    expect(parsed.ok && parsed.request.baseline).toBeUndefined();
    expect(parsed.ok && parsed.request.analysis.interval).toBe(30_000);
    const spec = parseRolloutSpec(input);
    expect(spec.ok ? [] : spec.issues.map((i) => i.path)).toEqual(['baseline']);
  });

  test('a request validates a baseline given like a spec does', () => {
    const parsed = parseRolloutRequest({ target: 'chat', baseline: { version: 'v2', url: 'ftp://x' }, candidate: V2, steps: [{ weight: 100 }] });
    expect(parsed.ok ? [] : parsed.issues.map((i) => i.path).sort()).toEqual(['baseline.url', 'candidate.version']);
  });
});

describe('the route compensation restores', () => {
  test('the captured route when there was one, else the baseline alone', () => {
    const spec = makeSpec({ target: 'chat' });
    const state = newRolloutState('rollout-chat', spec, null, '2025-01-01T00:00:00.000Z');
    state.routeBefore = null;
    expect(routeToRestore(state)).toEqual({ target: 'chat', versions: [{ ...spec.baseline, weight: 100 }] });
    const captured = route({ ...V2, weight: 0 }, { ...V1, weight: 100 });
    state.routeBefore = captured;
    expect(routeToRestore(state)).toBe(captured);
  });

  test('upgradeState: a state attached by an older version (undos, no capture) restores the baseline alone', () => {
    const spec = makeSpec({ target: 'chat' });
    const older = newRolloutState('rollout-chat', spec, null, '2025-01-01T00:00:00.000Z');
    older.undos.push({ description: 'detach candidate v2', route: routeToRestore(older) });
    delete older.routeBefore;
    expect(upgradeState(older).routeBefore).toBeNull();
    const notAttached = newRolloutState('rollout-chat', spec, null, '2025-01-01T00:00:00.000Z');
    expect(upgradeState(notAttached).routeBefore).toBeUndefined();
  });
});
