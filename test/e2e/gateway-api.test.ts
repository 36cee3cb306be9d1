/**
 * Rollouts end to end through a Gateway API HTTPRoute: the Gateway API router writes the weights
 * of one rule of the route to a real kube-apiserver (with the Gateway API CRDs), and the `istio`
 * preset reads the candidate's and the baseline's Istio metrics from a real Prometheus. The
 * worker, the REST API and a Temporal dev server are the product's. The Gateway that serves the
 * route and its Istio telemetry are the user's, outside model-canary: test/helpers/mesh.ts plays
 * them, reading the route from the apiserver and splitting real traffic between demo model
 * servers (processes of their own) by its weights.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { gatewayApiOptions, gatewayApiTrafficRouter } from '../../src/activities/routers/gateway-api';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import type { RolloutSpecInput } from '../../src/spec';
import { rolloutWorkflowId } from '../../src/workflows/messages';
import { expectEnded, rolloutEnded, startControlPlane, startRollout, type ControlPlane } from '../helpers/control-plane';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { eventually, request, versionsServing } from '../helpers/http';
import { startKube, type KubeCluster } from '../helpers/kube';
import { startMesh, type Mesh } from '../helpers/mesh';
import { startModelProcesses, stopModelProcesses, type ModelProcess } from '../helpers/model-processes';
import { startPrometheus, type RunningPrometheus } from '../helpers/prometheus';
import { uniqueTarget } from '../helpers/specs';

const NS = 'default';
const ROUTE = 'chat';
/** The canonical service Istio names the requests' destination by (`destination_canonical_service`: the pods' `app` label), all versions alike. */
const SERVICE = 'chat';
const ROUTES = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes`;

let kube: KubeCluster;
let env: TestWorkflowEnvironment;
let models: Record<string, ModelProcess>;
let mesh: Mesh;
let prometheus: RunningPrometheus;
let control: ControlPlane;
const runs: TrafficRun[] = [];

const MODEL = { MODEL_LATENCY_MS: '30', MODEL_LATENCY_SPREAD: '0.1' };

beforeAll(async () => {
  const [cluster, devServer, started] = await Promise.all([
    startKube(), // minutes only the first time (scripts/install-kube.sh builds kube-apiserver into .kube-bin/)
    startDevServer(),
    // The faulty candidate's pods carry a version label of their own, as another Deployment's would.
    startModelProcesses({ v1: MODEL, v2: MODEL, 'v2-faulty': { ...MODEL, MODEL_ERROR_RATE: '0.3' } }),
    workflowBundle(),
  ]);
  kube = cluster;
  env = devServer;
  models = started;
  mesh = await startMesh({
    kube,
    namespace: NS,
    httpRoute: ROUTE,
    services: { 'chat-v1': models.v1!.url, 'chat-v2': models.v2!.url, 'chat-v2-faulty': models['v2-faulty']!.url, 'chat-debug': models.v1!.url },
    versions: { 'chat-v1': 'v1', 'chat-v2': 'v2', 'chat-v2-faulty': 'v2-faulty', 'chat-debug': 'debug' },
    targetService: SERVICE,
  });
  [prometheus, control] = await Promise.all([startPrometheus({ targets: [mesh.host] }), startControlPlane(env, { kubeconfig: kube.kubeconfigPath })]);
}, 20 * 60_000);

afterAll(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.map((r) => r.done));
  await control?.stop();
  await prometheus?.stop();
  await mesh?.close();
  await stopModelProcesses(models);
  await env?.teardown();
  await kube?.stop();
}, 60_000);

afterEach(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.splice(0).map((r) => r.done));
});

/**
 * The operator's HTTPRoute for `target` (made anew): rule 0 sends `x-debug: true` requests to a
 * debug backend; rule 1, the one rolled out, serves chat-v1 alone (weight 1), the target's path
 * prefix stripped.
 */
function operatorRoute(target: string) {
  const prefix = `/${target}`;
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: ROUTE, namespace: NS, labels: { app: 'chat' } },
    spec: {
      parentRefs: [{ name: 'shared-gateway', namespace: 'infra' }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: prefix }, headers: [{ name: 'x-debug', value: 'true' }] }],
          backendRefs: [{ name: 'chat-debug', port: 80 }],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: prefix } }],
          filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }],
          backendRefs: [{ name: 'chat-v1', port: 80, weight: 1 }],
        },
      ],
    },
  };
}

async function getRoute(): Promise<any> {
  const res = await kube.request('GET', `${ROUTES}/${ROUTE}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** A target whose route serves v1 alone, seen by the mesh, with 40 requests/s through it. Returns the route as created. */
async function prepareTarget(): Promise<{ target: string; before: any }> {
  const target = uniqueTarget('gw');
  const gone = await kube.request('DELETE', `${ROUTES}/${ROUTE}`);
  expect([200, 404]).toContain(gone.status);
  const created = await kube.request('POST', ROUTES, operatorRoute(target));
  if (created.status !== 201) throw new Error(`creating HTTPRoute ${ROUTE}: ${created.status} ${JSON.stringify(created.body)}`);
  await mesh.synced(created.body.metadata.resourceVersion);
  runs.push(startTraffic({ gatewayUrl: mesh.url, target, rate: 40, durationMs: Number.POSITIVE_INFINITY, users: 1000 }));
  return { target, before: created.body };
}

function spec(target: string, candidateService: string, versionLabels: Record<string, string> = {}): RolloutSpecInput {
  return {
    target,
    // No URLs: the route's backendRefs say where each version serves.
    baseline: { version: 'v1' },
    candidate: { version: 'v2' },
    steps: [{ weight: 10, bake: '8s' }, { weight: 50, bake: '8s' }, { weight: 100 }],
    analysis: { interval: '4s', minRequests: 5, readiness: 'advisory' },
    routing: { kind: 'gateway-api', namespace: NS, httpRoute: ROUTE, rule: { index: 1 }, backends: { v1: { name: 'chat-v1', port: 80 }, v2: { name: candidateService, port: 80 } } },
    metrics: { kind: 'prometheus', url: prometheus.url, preset: 'istio', targetLabel: SERVICE, versionLabels },
  };
}

/**
 * The mesh's counts once `service` (which the new route sends nothing) has stopped moving: the
 * mesh counts a request when it is answered, so one sent just before the sync may still be in flight.
 */
function servedOnceSettled(service: string): Promise<Record<string, number>> {
  return eventually(async () => {
    const first = mesh.served();
    await new Promise((r) => setTimeout(r, 500));
    const second = mesh.served();
    return first[service] === second[service] ? second : undefined;
  }, 15_000, `${service}'s count to settle after the sync`);
}

/** The route with rule 1's backendRefs replaced: everything else must be as the operator made it. */
function withMainBackends(route: any, backendRefs: unknown[]): any {
  return { ...route.spec, rules: [route.spec.rules[0], { ...route.spec.rules[1], backendRefs }] };
}

it('promotes a healthy candidate: the HTTPRoute rule ends at chat-v2 10000, chat-v1 0, the rest untouched, and the mesh serves v2', async () => {
  const { target, before } = await prepareTarget();
  const started = await startRollout(control.api, spec(target, 'chat-v2'));
  const final = await rolloutEnded(control.api, started.id, 90_000);

  expectEnded(final, 'promoted');
  const after = await getRoute();
  expect(after.spec).toEqual(
    withMainBackends(before, [
      { group: '', kind: 'Service', name: 'chat-v1', port: 80, weight: 0 },
      { group: '', kind: 'Service', name: 'chat-v2', port: 80, weight: 10000 },
    ]),
  );
  expect(after.metadata.labels).toEqual(before.metadata.labels);

  const passed = final.decisions.filter((d) => d.verdict === 'pass');
  expect(passed.some((d) => d.weight === 10)).toBe(true);
  // The checks measured the mesh's split, as Istio's metrics in Prometheus counted it: about half at 50%.
  for (const d of passed.filter((d) => d.weight === 50)) {
    const share = d.metrics.candidate.requests / (d.metrics.candidate.requests + d.metrics.baseline.requests);
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.7);
  }

  // The data plane follows the route: chat-v2 takes everything now, and rule 0 still sends debug requests to its backend.
  await mesh.synced(after.metadata.resourceVersion);
  const served = await servedOnceSettled('chat-v1');
  const debug = await fetch(`${mesh.url}/${target}/v1/models`, { headers: { 'x-debug': 'true' } });
  await debug.text();
  await new Promise((r) => setTimeout(r, 1_000));
  const now = mesh.served();
  expect(now['chat-debug']).toBe((served['chat-debug'] ?? 0) + 1);
  expect(now['chat-v1']).toBe(served['chat-v1']);
  expect(now['chat-v2']! - served['chat-v2']!).toBeGreaterThan(20);
}, 120_000);

it('rolls back a candidate with 30% errors: the HTTPRoute rule is back at chat-v1 weight 1, chat-v2-faulty 0', async () => {
  const { target, before } = await prepareTarget();
  const started = await startRollout(control.api, spec(target, 'chat-v2-faulty', { v2: 'v2-faulty' }));
  const final = await rolloutEnded(control.api, started.id, 90_000);

  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/error/); // "errors" or "error rate", as the judge words it
  const failed = final.decisions.find((d) => d.verdict === 'fail')!;
  expect(failed.metrics.candidate.errors).toBeGreaterThan(0);
  // The operator's weight 1 exactly (routerState), not 10000; the candidate's backendRef stays, at 0.
  const after = await getRoute();
  expect(after.spec).toEqual(
    withMainBackends(before, [
      { group: '', kind: 'Service', name: 'chat-v1', port: 80, weight: 1 },
      { group: '', kind: 'Service', name: 'chat-v2-faulty', port: 80, weight: 0 },
    ]),
  );

  // And the mesh sends nothing to the faulty candidate any more.
  await mesh.synced(after.metadata.resourceVersion);
  const served = await servedOnceSettled('chat-v2-faulty');
  await new Promise((r) => setTimeout(r, 1_000));
  expect(mesh.served()['chat-v2-faulty']).toBe(served['chat-v2-faulty']);
}, 120_000);

it('refuses a rollout whose baseline is not what the HTTPRoute serves (409 baseline_mismatch), changing nothing', async () => {
  const { target, before } = await prepareTarget();
  const wrong: RolloutSpecInput = {
    ...spec(target, 'chat-v2'),
    baseline: { version: 'v0' },
    routing: { kind: 'gateway-api', namespace: NS, httpRoute: ROUTE, rule: { index: 1 }, backends: { v0: { name: 'chat-v0', port: 80 }, v2: { name: 'chat-v2', port: 80 } } },
  };
  const res = await request(control.api.url, 'POST', '/v1/rollouts', { body: wrong });
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe('baseline_mismatch');
  expect(res.body.error.message).toContain('chat-v1');
  // What serves, read from the route: chat-v1, a Service of no version of the spec, under its Service's name.
  expect(res.body.error.live.versions).toEqual([{ version: 'chat-v1', weight: 100, url: 'svc/default/chat-v1:80' }]);
  const after = await getRoute();
  expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  expect((await request(control.api.url, 'GET', `/v1/rollouts/${encodeURIComponent(rolloutWorkflowId(target))}`)).status).toBe(404);
}, 30_000);

it('a header match at 100%: requests with x-canary-user: internal all reach chat-v2 through the mesh, every other request chat-v1', async () => {
  const target = uniqueTarget('gw');
  expect([200, 404]).toContain((await kube.request('DELETE', `${ROUTES}/${ROUTE}`)).status);
  expect((await kube.request('POST', ROUTES, operatorRoute(target))).status).toBe(201);
  const router = gatewayApiTrafficRouter(gatewayApiOptions.parse(spec(target, 'chat-v2').routing), { gatewayUrl: 'http://127.0.0.1:1', kubeconfig: kube.kubeconfigPath });
  const match = { header: 'x-canary-user', values: ['internal'], others: 'v1' };
  await router.setWeights({ target, versions: [{ version: 'v1', weight: 0 }, { version: 'v2', weight: 100 }], match }, { rolloutId: `operator-${target}` });
  await mesh.synced((await getRoute()).metadata.resourceVersion);
  // The model server that answered (x-model-version), for 40 requests.
  const servedBy = (headers: Record<string, string>) => versionsServing(`${mesh.url}/${target}/healthz`, 40, () => headers);
  expect(await servedBy({ 'x-canary-user': 'internal' })).toEqual(['v2']);
  expect(await servedBy({})).toEqual(['v1']);
  expect(await servedBy({ 'x-canary-user': 'Internal' })).toEqual(['v1']);
  await expect(router.readRoute(target)).resolves.toMatchObject({ versions: [{ version: 'v2', weight: 100 }], match });
}, 30_000);
