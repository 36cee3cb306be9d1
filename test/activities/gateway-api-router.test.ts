/**
 * The Gateway API router against a real kube-apiserver (on etcd) with the Gateway API CRDs:
 * weights written to one rule of an HTTPRoute and read back, everything else untouched,
 * optimistic concurrency, and the failures retrying cannot fix.
 */
import { ApplicationFailure } from '@temporalio/common';
import { gatewayApiOptions, gatewayApiRouter, gatewayApiTrafficRouter, MATCH_ANNOTATION, type GatewayApiHooks, type GatewayApiOptions } from '../../src/activities/routers/gateway-api';
import { routerSupports } from '../../src/activities/routers';
import type { TrafficRoute, TrafficRouter } from '../../src/activities/types';
import { startKube, type KubeCluster } from '../helpers/kube';

let kube: KubeCluster;

beforeAll(async () => {
  kube = await startKube();
  console.log(`kube-apiserver with the Gateway API CRDs ready in ${kube.startupMs} ms`);
}, 20 * 60_000); // minutes only when scripts/install-kube.sh has to build kube-apiserver first

afterAll(async () => {
  await kube?.stop();
});

const NS = 'default';
const routePath = (name: string, ns = NS) => `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes/${name}`;

/** Rule 0: a header match to a debug backend, with a filter; rule 1 ("main"): the baseline alone, weight 1. */
function httpRoute(name: string, mainBackends: Array<Record<string, unknown>> = [{ name: 'chat-v1', port: 8000, weight: 1 }]) {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: NS, labels: { app: 'chat' } },
    spec: {
      parentRefs: [{ name: 'shared-gateway', namespace: 'infra' }],
      hostnames: ['chat.example.com'],
      rules: [
        {
          name: 'debug',
          matches: [{ headers: [{ name: 'x-debug', value: 'true' }], path: { type: 'PathPrefix', value: '/v1' } }],
          filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-route', value: 'debug' }] } }],
          backendRefs: [{ name: 'chat-debug', port: 8000 }],
        },
        {
          name: 'main',
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-served-by', value: 'canary' }] } }],
          backendRefs: mainBackends,
        },
      ],
    },
  };
}

async function createRoute(name: string, mainBackends?: Array<Record<string, unknown>>): Promise<any> {
  const res = await kube.request('POST', `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes`, httpRoute(name, mainBackends));
  expect(res.status).toBe(201);
  return res.body;
}

async function getRoute(name: string): Promise<any> {
  const res = await kube.request('GET', routePath(name));
  expect(res.status).toBe(200);
  return res.body;
}

function options(httpRouteName: string, more: Partial<GatewayApiOptions> = {}): GatewayApiOptions {
  return gatewayApiOptions.parse({
    kind: 'gateway-api',
    namespace: NS,
    httpRoute: httpRouteName,
    rule: { name: 'main' },
    backends: { v1: { name: 'chat-v1', port: 8000 }, v2: { name: 'chat-v2', port: 8000 } },
    ...more,
  });
}

function router(httpRouteName: string, more: Partial<GatewayApiOptions> = {}, hooks?: GatewayApiHooks): TrafficRouter {
  return gatewayApiTrafficRouter(options(httpRouteName, more), { gatewayUrl: 'http://127.0.0.1:1', kubeconfig: kube.kubeconfigPath }, hooks);
}

const split = (v1: number, v2: number): TrafficRoute => ({
  target: 'chat',
  versions: [
    { version: 'v1', weight: v1 },
    { version: 'v2', weight: v2 },
  ],
});
const change = { rolloutId: 'rollout-chat-1' };

/** The weights of the main rule's backendRefs, by Service name. */
const weightsOf = (route: any): Record<string, number> =>
  Object.fromEntries((route.spec.rules[1].backendRefs as Array<{ name: string; weight: number }>).map((r) => [r.name, r.weight]));

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('options', () => {
  it('accepts a rule by index or name, and backends by version', () => {
    expect(options('chat', { rule: { index: 1 } }).rule).toEqual({ index: 1 });
    expect(gatewayApiRouter.kind).toBe('gateway-api');
    expect(gatewayApiRouter.versionUrls).toBe('unused');
  });

  it.each([
    [{ namespace: 'Default' }, 'routing.namespace'],
    [{ httpRoute: 'chat_route' }, 'routing.httpRoute'],
    [{ rule: { index: -1 } }, 'routing.rule'],
    [{ rule: { position: 1 } }, 'routing.rule'],
    [{ backends: {} }, 'routing.backends'],
    [{ backends: { v1: { name: 'chat-v1', port: 0 } } }, 'port must be 1-65535'],
    [{ backends: { v1: { name: 'chat-v1' } } }, 'port'],
    [{ backends: { v1: { name: 'chat-v1', port: 80 }, v2: { name: 'chat-v1', port: 80 } } }, 'routing.backends.v2 is the same Service port as routing.backends.v1'],
    [{ extra: true }, 'extra'],
  ])('refuses %j, naming %s', (patch, field) => {
    const parsed = gatewayApiOptions.safeParse({
      kind: 'gateway-api',
      namespace: NS,
      httpRoute: 'chat',
      rule: { index: 0 },
      backends: { v1: { name: 'chat-v1', port: 8000 } },
      ...patch,
    });
    expect(parsed.success).toBe(false);
    const text = JSON.stringify(parsed.error!.issues);
    expect(text).toContain(field);
  });
});

describe('router capabilities', () => {
  it('the embedded gateway supports match and mirror; nginx and gateway-api match only', () => {
    expect(routerSupports('gateway', 'match')).toBe(true);
    expect(routerSupports('gateway', 'mirror')).toBe(true);
    expect(routerSupports('nginx', 'match')).toBe(true);
    expect(routerSupports('nginx', 'mirror')).toBe(false);
    expect(routerSupports('gateway-api', 'match')).toBe(true);
    expect(routerSupports('gateway-api', 'mirror')).toBe(false);
    expect(routerSupports('no-such-router', 'match')).toBe(false);
  });
});

describe('an HTTPRoute in a real API server', () => {
  it('steps the weights of one rule and leaves every other rule, match, filter and backendRef as it was', async () => {
    await createRoute('chat');
    const before = await getRoute('chat');
    const r = router('chat');

    // What serves before the rollout: the baseline alone, its weight 1 kept for restoring exactly.
    const captured = await r.readRoute('chat');
    expect(captured).toEqual({
      target: 'chat',
      versions: [{ version: 'v1', weight: 100, url: 'svc/default/chat-v1:8000' }],
      routerState: { weights: '{"v1":1}' },
    });

    let last = before;
    const steps: Array<[number, number, Record<string, number>]> = [
      [100, 0, { 'chat-v1': 10000, 'chat-v2': 0 }],
      [90, 10, { 'chat-v1': 9000, 'chat-v2': 1000 }],
      [99.75, 0.25, { 'chat-v1': 9975, 'chat-v2': 25 }],
      [0, 100, { 'chat-v1': 0, 'chat-v2': 10000 }],
    ];
    for (const [v1, v2, raw] of steps) {
      await r.setWeights(split(v1, v2), change);
      const now = await getRoute('chat');
      expect(weightsOf(now)).toEqual(raw);
      expect(now.metadata.resourceVersion).not.toBe(last.metadata.resourceVersion);
      expect(now.spec.rules[0]).toEqual(before.spec.rules[0]);
      expect(now.spec.rules[1].matches).toEqual(before.spec.rules[1].matches);
      expect(now.spec.rules[1].filters).toEqual(before.spec.rules[1].filters);
      expect({ ...now.spec, rules: undefined }).toEqual({ ...before.spec, rules: undefined });
      expect(now.metadata.labels).toEqual(before.metadata.labels);
      // The candidate's backendRef was appended once, as a Service port (group/kind as the API defaults them).
      expect(now.spec.rules[1].backendRefs[1]).toEqual({ group: '', kind: 'Service', name: 'chat-v2', port: 8000, weight: raw['chat-v2'] });

      const read = await r.readRoute('chat');
      const expected = [
        { version: 'v1', weight: v1, url: 'svc/default/chat-v1:8000' },
        { version: 'v2', weight: v2, url: 'svc/default/chat-v2:8000' },
      ].filter((v) => v.weight > 0);
      expect(read?.versions).toEqual(expected);
      last = now;
    }

    // Restoring the captured route writes back exactly what was there; the candidate keeps its backendRef, at 0.
    await r.setWeights(captured!, change);
    const restored = await getRoute('chat');
    expect(weightsOf(restored)).toEqual({ 'chat-v1': 1, 'chat-v2': 0 });
    expect(restored.spec.rules[0]).toEqual(before.spec.rules[0]);
    expect((await r.readRoute('chat'))?.versions).toEqual([{ version: 'v1', weight: 100, url: 'svc/default/chat-v1:8000' }]);
  });

  it('works through the registry entry, with the worker settings’ kubeconfig', async () => {
    await createRoute('registry');
    const r = gatewayApiRouter.create(options('registry'), { gatewayUrl: 'http://127.0.0.1:1', kubeconfig: kube.kubeconfigPath });
    await r.setWeights(split(80, 20), change);
    expect(weightsOf(await getRoute('registry'))).toEqual({ 'chat-v1': 8000, 'chat-v2': 2000 });
  });

  it('finds the rule by index too, and reports a backendRef of no version under its Service name', async () => {
    await createRoute('legacy', [
      { name: 'chat-v1', port: 8000, weight: 3 },
      { name: 'chat-legacy', port: 9000, weight: 1 },
    ]);
    const r = router('legacy', { rule: { index: 1 } });
    expect((await r.readRoute('chat'))?.versions).toEqual([
      { version: 'v1', weight: 75, url: 'svc/default/chat-v1:8000' },
      { version: 'chat-legacy', weight: 25, url: 'svc/default/chat-legacy:9000' },
    ]);
    // Not ours: left as it is.
    await r.setWeights(split(90, 10), change);
    const now = await getRoute('legacy');
    expect(weightsOf(now)).toEqual({ 'chat-v1': 9000, 'chat-legacy': 1, 'chat-v2': 1000 });
  });

  it('retries the read-modify-write when the route changed between its read and its write, keeping the other change', async () => {
    await createRoute('conflict');
    const attempts: number[] = [];
    const r = router('conflict', {}, {
      beforeWrite: async (attempt) => {
        attempts.push(attempt);
        if (attempt > 1) return;
        // Another writer, in between: a new header on rule 0.
        const route = await getRoute('conflict');
        route.spec.rules[0].filters[0].requestHeaderModifier.add.push({ name: 'x-other-writer', value: 'yes' });
        expect((await kube.request('PUT', routePath('conflict'), route)).status).toBe(200);
      },
    });
    await r.setWeights(split(90, 10), change);
    expect(attempts).toEqual([1, 2]);
    const now = await getRoute('conflict');
    expect(weightsOf(now)).toEqual({ 'chat-v1': 9000, 'chat-v2': 1000 });
    expect(now.spec.rules[0].filters[0].requestHeaderModifier.add).toEqual([
      { name: 'x-route', value: 'debug' },
      { name: 'x-other-writer', value: 'yes' },
    ]);
  });

  it('gives up for now (retryable) when another writer wins every attempt', async () => {
    await createRoute('busy');
    let n = 0;
    const r = router('busy', {}, {
      beforeWrite: async () => {
        const route = await getRoute('busy');
        route.metadata.labels.touched = String((n += 1));
        expect((await kube.request('PUT', routePath('busy'), route)).status).toBe(200);
      },
    });
    const failure = await failureOf(r.setWeights(split(90, 10), change));
    expect(failure.nonRetryable).toBe(false);
    expect(failure.type).toBe('Conflict');
    expect(failure.message).toContain('HTTPRoute default/busy');
    expect(weightsOf(await getRoute('busy'))).toEqual({ 'chat-v1': 1 });
  });

  it('fails (retryable) when the read-back does not show the weights written', async () => {
    await createRoute('overwritten');
    const r = router('overwritten', {}, {
      afterWrite: async () => {
        const route = await getRoute('overwritten');
        route.spec.rules[1].backendRefs[1].weight = 7;
        expect((await kube.request('PUT', routePath('overwritten'), route)).status).toBe(200);
      },
    });
    const err = await r.setWeights(split(90, 10), change).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as ApplicationFailure).nonRetryable).toBeFalsy();
    expect(err!.message).toContain('v2 (svc/default/chat-v2:8000): weight 7, expected 1000');
  });

  it('a missing route: readRoute answers undefined, setWeights fails for good', async () => {
    const r = router('absent');
    expect(await r.readRoute('chat')).toBeUndefined();
    const failure = await failureOf(r.setWeights(split(90, 10), change));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('RouteNotFound');
    expect(failure.message).toContain('HTTPRoute default/absent does not exist');
  });

  it('a missing rule, or a version with no Service in backends, fails for good and names the field', async () => {
    await createRoute('rules');
    for (const rule of [{ index: 5 }, { name: 'nope' }]) {
      const failure = await failureOf(router('rules', { rule }).setWeights(split(90, 10), change));
      expect(failure.nonRetryable).toBe(true);
      expect(failure.type).toBe('RuleNotFound');
      expect(failure.message).toContain('routing.rule');
      expect(failure.message).toContain('0 "debug", 1 "main"');
    }
    const failure = await failureOf(
      router('rules').setWeights({ target: 'chat', versions: [{ version: 'v1', weight: 90 }, { version: 'v3', weight: 10 }] }, change),
    );
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('InvalidRoute');
    expect(failure.message).toContain('version "v3" of chat has no Service in routing.backends');
    expect(weightsOf(await getRoute('rules'))).toEqual({ 'chat-v1': 1 });
  });

  it('an identity that may only read httproutes: reads work, a write is a 403 that fails for good', async () => {
    await createRoute('readonly');
    const reader = await kube.serviceAccount('route-reader', NS, [
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get'] },
    ]);
    // routing.kubeconfig wins over the worker's (admin) kubeconfig.
    const r = router('readonly', { kubeconfig: reader.kubeconfigPath });
    expect((await r.readRoute('chat'))?.versions).toEqual([{ version: 'v1', weight: 100, url: 'svc/default/chat-v1:8000' }]);
    const failure = await failureOf(r.setWeights(split(90, 10), change));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('Forbidden');
    expect(failure.message).toContain('writing the weights of HTTPRoute default/readonly');
    expect(failure.message).toContain('403');
    expect(failure.message).toContain('system:serviceaccount:default:route-reader');
    expect(failure.message).toContain('get and update on httproutes.gateway.networking.k8s.io');
    expect(weightsOf(await getRoute('readonly'))).toEqual({ 'chat-v1': 1 });
  });

  it('an identity that may not even read: readRoute fails for good', async () => {
    await createRoute('secret');
    const nobody = await kube.serviceAccount('nobody', NS, [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]);
    const failure = await failureOf(router('secret', { kubeconfig: nobody.kubeconfigPath }).readRoute('chat'));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('Forbidden');
    expect(failure.message).toContain('reading HTTPRoute default/secret');
  });

  it('a header match: the rule sends everyone else to the baseline, a header-match rule after it carries the split; without it the rule is restored exactly', async () => {
    await createRoute('matched');
    const before = await getRoute('matched');
    const r = router('matched');
    const captured = await r.readRoute('chat');
    const match = (...values: string[]) => ({ header: 'x-canary-user', values, others: 'v1' });
    const rest = before.spec.rules[1];

    await r.setWeights({ ...split(90, 10), match: match('internal', 'beta') }, change);
    let now = await getRoute('matched');
    expect(now.spec.rules).toHaveLength(3);
    expect(now.spec.rules[0]).toEqual(before.spec.rules[0]);
    // The stepped rule keeps its place, name, matches and filters, and sends everything to v1 (weight 1).
    expect(now.spec.rules[1]).toEqual({ ...rest, backendRefs: [{ group: '', kind: 'Service', name: 'chat-v1', port: 8000, weight: 1 }] });
    // Right after it: its matches with the header at each value (more specific, so they win), its filters, the split.
    expect(now.spec.rules[2]).toEqual({
      matches: ['internal', 'beta'].map((value) => ({ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'x-canary-user', value }] })),
      filters: rest.filters,
      backendRefs: [
        { group: '', kind: 'Service', name: 'chat-v1', port: 8000, weight: 9000 },
        { group: '', kind: 'Service', name: 'chat-v2', port: 8000, weight: 1000 },
      ],
    });
    expect(JSON.parse(now.metadata.annotations[MATCH_ANNOTATION])).toEqual({ ...match('internal', 'beta'), rules: 1 });
    await expect(r.readRoute('chat')).resolves.toEqual({
      target: 'chat',
      versions: [
        { version: 'v1', weight: 90, url: 'svc/default/chat-v1:8000' },
        { version: 'v2', weight: 10, url: 'svc/default/chat-v2:8000' },
      ],
      routerState: { weights: '{"v1":9000,"v2":1000}' },
      match: match('internal', 'beta'),
    });

    // The next step replaces the header-match rule (one value now), never adds another.
    await r.setWeights({ ...split(0, 100), match: match('internal') }, change);
    now = await getRoute('matched');
    expect(now.spec.rules).toHaveLength(3);
    expect(now.spec.rules[2].matches).toEqual([{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'x-canary-user', value: 'internal' }] }]);
    expect(now.spec.rules[2].backendRefs.map((b: { weight: number }) => b.weight)).toEqual([0, 10000]);
    await expect(r.readRoute('chat')).resolves.toMatchObject({ versions: [{ version: 'v2', weight: 100 }], match: match('internal') });

    // Back to the captured route: the header-match rule and the annotation are gone, the rules exactly as they were.
    await r.setWeights(captured!, change);
    now = await getRoute('matched');
    expect(now.spec).toEqual(before.spec);
    expect(now.metadata.annotations).toBeUndefined();
    await expect(r.readRoute('chat')).resolves.toEqual(captured);
  });

  it('a rule with a ReplacePrefixMatch rewrite (one match per rule, a CRD rule) gets one header-match rule per value', async () => {
    const route = httpRoute('rewrite');
    route.spec.rules[1]!.matches = [{ path: { type: 'PathPrefix', value: '/chat' } }];
    route.spec.rules[1]!.filters = [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }] as any;
    expect((await kube.request('POST', `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes`, route)).status).toBe(201);
    const r = router('rewrite');
    await r.setWeights({ ...split(50, 50), match: { header: 'x-canary-user', values: ['a', 'b'], others: 'v1' } }, change);
    const now = await getRoute('rewrite');
    expect(now.spec.rules.map((rule: any) => rule.matches.map((m: any) => m.headers?.[0]?.value ?? null))).toEqual([['true'], [null], ['a'], ['b']]);
    for (const rule of now.spec.rules.slice(2)) expect(rule.filters).toEqual(route.spec.rules[1]!.filters);
    await expect(r.readRoute('chat')).resolves.toMatchObject({ match: { values: ['a', 'b'] }, versions: [{ weight: 50 }, { weight: 50 }] });
    await r.setWeights(split(100, 0), change);
    expect((await getRoute('rewrite')).spec.rules).toHaveLength(2);
  });

  it('refuses for good, before writing, a mirror, a match it cannot express, or a rule already matching the header', async () => {
    await createRoute('refused');
    const r = router('refused');
    const mirror = await failureOf(r.setWeights({ ...split(90, 10), mirror: { from: 'v1', to: 'v2', percent: 10 } }, change));
    expect(mirror.nonRetryable).toBe(true);
    expect(mirror.type).toBe('UnsupportedRouteFeature');
    expect(mirror.message).toContain('"mirror"');
    for (const [bad, field] of [
      [{ header: 'X-Canary-User', values: ['a'], others: 'v1' }, 'match.header'],
      [{ header: 'x-canary-user', values: ['a\nb'], others: 'v1' }, 'match.values'],
      [{ header: 'x-canary-user', values: [], others: 'v1' }, 'match.values'],
      [{ header: 'x-canary-user', values: ['a'], others: 'v3' }, 'match.others'],
    ] as const) {
      const failure = await failureOf(r.setWeights({ ...split(90, 10), match: bad as any }, change));
      expect(failure.nonRetryable).toBe(true);
      expect(failure.type).toBe('InvalidRoute');
      expect(failure.message).toContain(field);
    }
    // Rule 0 matches on x-debug already: no second match on it.
    const onDebug = await failureOf(router('refused', { rule: { index: 0 }, backends: { v1: { name: 'chat-debug', port: 8000 }, v2: { name: 'chat-v2', port: 8000 } } }).setWeights({ ...split(90, 10), match: { header: 'x-debug', values: ['yes'], others: 'v1' } }, change));
    expect(onDebug.message).toContain('already matches on the header x-debug');
    expect(weightsOf(await getRoute('refused'))).toEqual({ 'chat-v1': 1 });
    expect((await getRoute('refused')).spec.rules).toHaveLength(2);
  });
});
