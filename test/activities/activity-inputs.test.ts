/**
 * The activities take each rollout's `routing` and `metrics`; inputs scheduled by an earlier
 * version (a bare route, a bare target, a query without a window) still work, so that a rollout
 * compensating across an upgrade gets its traffic back.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics } from '../helpers/adapters';

function activities() {
  const router = new RecordingRouter();
  const metrics = new ScriptedMetrics();
  const asked: string[] = [];
  const acts = createActivities({
    routerFor: (routing) => (asked.push(`routing ${routing.kind}`), router),
    metricsFor: (source) => (asked.push(`metrics ${source.kind}`), metrics),
    notifier: new RecordingNotifier(),
  });
  return { acts, router, asked, env: new MockActivityEnvironment({ workflowExecution: { workflowId: 'rollout-chat', runId: 'r' } } as never) };
}

const route = { target: 'chat', versions: [{ version: 'v1', url: 'http://127.0.0.1:9001', weight: 100 }] };
const versions = { target: 'chat', baseline: { version: 'v1' }, candidate: { version: 'v2' } };

test("today's inputs name the adapter kinds", async () => {
  const { acts, router, asked, env } = activities();
  await env.run(acts.setTrafficWeights, { routing: { kind: 'gateway' as const }, route });
  expect(await env.run(acts.readTrafficRoute, { routing: { kind: 'gateway' as const }, target: 'chat' })).toEqual(route);
  expect(((await env.run(acts.collectMetrics, { metrics: { kind: 'gateway' as const }, query: { ...versions, window: { startMs: 0, endMs: 1 } } })) as { kind: string }).kind).toBe('cumulative');
  expect(router.splits()).toEqual(['100']);
  expect(asked).toEqual(['routing gateway', 'routing gateway', 'metrics gateway']);
});

test('inputs scheduled before adapters were chosen per rollout go to the embedded gateway', async () => {
  const { acts, router, asked, env } = activities();
  await env.run(acts.setTrafficWeights, route as never);
  expect(await env.run(acts.readTrafficRoute, 'chat' as never)).toEqual(route);
  expect(((await env.run(acts.collectMetrics, versions as never)) as { kind: string }).kind).toBe('cumulative');
  expect(router.splits()).toEqual(['100']);
  expect(asked).toEqual(['routing gateway', 'routing gateway', 'metrics gateway']);
});
