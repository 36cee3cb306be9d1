/**
 * URL_ALLOW_LIST in the activities (defence in depth: a rollout started straight through
 * Temporal never passed the API's check). A URL outside the list fails the activity for good,
 * naming it and the setting, before anything is called; restoring what the target serves
 * already is never refused, so traffic always gets back to the baseline.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, registryAdapters, type TrafficRoute } from '../../src/activities';
import { adapterSettings, loadConfig } from '../../src/config';
import { parseUrlAllowList } from '../../src/spec';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics } from '../helpers/adapters';

const ALLOW = 'http://127.0.0.1:*';

function setup(list: string | null = ALLOW) {
  const router = new RecordingRouter();
  const metrics = new ScriptedMetrics();
  const notifier = new RecordingNotifier();
  const metricsAsked: string[] = [];
  const acts = createActivities({
    routerFor: () => router,
    metricsFor: (source) => (metricsAsked.push(source.kind), metrics),
    notifier,
    ...(list ? { urlAllowList: parseUrlAllowList(list) } : {}),
  });
  const env = new MockActivityEnvironment({ workflowExecution: { workflowId: 'rollout-chat', runId: 'r' } } as never);
  return { acts, router, notifier, metricsAsked, env };
}

const gateway = { kind: 'gateway' as const };
const split = (candidateUrl: string, weight = 10): TrafficRoute => ({
  target: 'chat',
  versions: [
    { version: 'v1', url: 'http://127.0.0.1:9001', weight: 100 - weight },
    { version: 'v2', url: candidateUrl, weight },
  ],
});
const event = { kind: 'phase' as const, rolloutId: 'rollout-chat', target: 'chat', phase: 'progressing', at: new Date(0).toISOString(), message: 'm' };

/** The failure an activity threw: non-retryable, of type UrlNotAllowed, with its message. */
async function refusal(run: Promise<unknown>): Promise<{ message: string; nonRetryable: boolean | null | undefined; type: string | undefined | null }> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  return { message: failure.message, nonRetryable: failure.nonRetryable, type: failure.type };
}

test('setTrafficWeights refuses a route to a URL outside the list, and sets nothing', async () => {
  const { acts, router, env } = setup();
  const failure = await refusal(env.run(acts.setTrafficWeights, { routing: gateway, route: split('http://169.254.169.254/latest') }));
  expect(failure).toEqual({
    nonRetryable: true,
    type: 'UrlNotAllowed',
    message: 'chat: version v2 url "http://169.254.169.254/latest" is not allowed by URL_ALLOW_LIST (http://127.0.0.1:*): the control plane calls only URLs that match one of its patterns',
  });
  expect(router.routes).toEqual([]);
  // credentials in the URL are not its host
  await refusal(env.run(acts.setTrafficWeights, { routing: gateway, route: split('http://127.0.0.1@169.254.169.254/') }));
  expect(router.routes).toEqual([]);
});

test("setTrafficWeights refuses a shadow step's evaluator outside the list", async () => {
  const { acts, router, env } = setup();
  const route: TrafficRoute = { ...split('http://127.0.0.1:9002', 0), mirror: { from: 'v1', to: 'v2', percent: 10, evaluator: { url: 'http://169.254.169.254/judge', sample: 0.1 } } };
  const failure = await refusal(env.run(acts.setTrafficWeights, { routing: gateway, route }));
  expect(failure.message).toMatch(/^chat: mirror evaluator url "http:\/\/169\.254\.169\.254\/judge" is not allowed by URL_ALLOW_LIST/);
  expect(router.routes).toEqual([]);
});

test('URLs inside the list, or without a list, are set as before', async () => {
  const { acts, router, env } = setup();
  await env.run(acts.setTrafficWeights, { routing: gateway, route: split('http://127.0.0.1:9002') });
  expect(router.splits()).toEqual(['90/10']);
  const open = setup(null);
  await open.env.run(open.acts.setTrafficWeights, { routing: gateway, route: split('http://169.254.169.254/') });
  expect(open.router.splits()).toEqual(['90/10']);
});

test('a route back to the baseline is never refused: a version at 0% gets no request, its URL is not checked', async () => {
  const { acts, router, env } = setup();
  // the first step was refused, so nothing serves the candidate; compensation restores the baseline
  await env.run(acts.setTrafficWeights, { routing: gateway, route: split('http://169.254.169.254/latest', 0) });
  expect(router.splits()).toEqual(['100/0']);
  // but a 0% version that still gets requests — the mirror's target, the one unmatched requests go to — is checked
  const mirrored: TrafficRoute = { ...split('http://169.254.169.254/', 0), mirror: { from: 'v1', to: 'v2', percent: 10 } };
  await refusal(env.run(acts.setTrafficWeights, { routing: gateway, route: mirrored }));
  const matched: TrafficRoute = { ...split('http://169.254.169.254/', 0), match: { header: 'x-internal', values: ['1'], others: 'v2' } };
  await refusal(env.run(acts.setTrafficWeights, { routing: gateway, route: matched }));
  expect(router.splits()).toEqual(['100/0']);
});

test('restoring URLs the target serves already is never refused (an undo after the list changed)', async () => {
  const { acts, router, env } = setup('http://127.0.0.1:9001');
  // served at 50% before the list was set (or changed)
  router.live.set('chat', split('http://10.1.2.3:9002', 50));
  // undoing a step: back to 10%, the same URLs: nothing new, so allowed
  await env.run(acts.setTrafficWeights, { routing: gateway, route: split('http://10.1.2.3:9002', 10) });
  expect(router.splits()).toEqual(['90/10']);
  // a URL it does not serve is still refused
  await refusal(env.run(acts.setTrafficWeights, { routing: gateway, route: split('http://10.9.9.9:9002', 50) }));
  expect(router.splits()).toEqual(['90/10']);
});

test('collectMetrics refuses a Prometheus URL outside the list before asking it', async () => {
  const { acts, metricsAsked, env } = setup();
  const query = { target: 'chat', baseline: { version: 'v1' }, candidate: { version: 'v2' }, window: { startMs: 0, endMs: 1 } };
  const failure = await refusal(env.run(acts.collectMetrics, { metrics: { kind: 'prometheus', url: 'http://169.254.169.254', preset: 'gateway' } as never, query }));
  expect(failure.message).toMatch(/^metrics\.url "http:\/\/169\.254\.169\.254" is not allowed by URL_ALLOW_LIST/);
  expect(failure.nonRetryable).toBe(true);
  expect(metricsAsked).toEqual([]);
  await env.run(acts.collectMetrics, { metrics: gateway, query });
  expect(metricsAsked).toEqual(['gateway']);
});

test('notify refuses a webhook outside the list and sends nothing', async () => {
  const { acts, notifier, env } = setup();
  const failure = await refusal(env.run(acts.notify, { destination: 'http://169.254.169.254/hook', event }));
  expect(failure).toMatchObject({ nonRetryable: true, type: 'UrlNotAllowed' });
  expect(failure.message).toMatch(/^notify\.webhook "http:\/\/169\.254\.169\.254\/hook" is not allowed by URL_ALLOW_LIST/);
  expect(notifier.events).toEqual([]);
  await env.run(acts.notify, { destination: 'http://127.0.0.1:9999/hook', event });
  expect(notifier.events.map((e) => e.destination)).toEqual(['http://127.0.0.1:9999/hook']);
});

test("the worker's activities get URL_ALLOW_LIST from its settings (loadConfig → adapterSettings → registryAdapters)", () => {
  const config = loadConfig({ URL_ALLOW_LIST: ALLOW });
  const deps = registryAdapters(adapterSettings(config), new RecordingNotifier());
  expect(deps.urlAllowList?.patterns.map((p) => p.text)).toEqual([ALLOW]);
  expect(registryAdapters(adapterSettings(loadConfig({})), new RecordingNotifier()).urlAllowList).toBeUndefined();
});
