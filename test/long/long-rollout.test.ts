/**
 * Bounded state (issue 8, finding 2): 20,000 checks on the time-skipping server. The workflow
 * state, the status query's answer and the continue-as-new payload stay bounded; the rollout
 * still answers its status, continues as new, and aborts back to the baseline.
 */
import { abortUpdate, statusQuery } from '../../src/workflows/messages';
import { DECISIONS_KEPT } from '../../src/workflows/state';
import { isFinal } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics } from '../helpers/adapters';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';
import { makeSpec } from '../helpers/specs';

const server = useTimeSkippingServer();
const CHECKS = Number(process.env.LONG_ROLLOUT_CHECKS || 20_000);

test(`${CHECKS} checks: status, continue-as-new and abort stay within Temporal's limits`, async () => {
  // A long bake at 10%, one check a second, then a manual gate: the shape of a long hold. The
  // gate stops the rollout by itself after CHECKS checks.
  const bake = `${CHECKS}s`;
  const spec = makeSpec({ steps: [{ weight: 10, bake, gate: 'manual' }, { weight: 100 }], analysis: { judge: 'threshold', interval: '1s', minRequests: 1 } });
  const router = new RecordingRouter();
  const metrics = new ScriptedMetrics({ requests: 2, errorRate: 0, latencyMs: 100 }, { requests: 18, errorRate: 0, latencyMs: 100 });
  const started = Date.now();
  const historyLimit = process.env.LONG_ROLLOUT_HISTORY ? Number(process.env.LONG_ROLLOUT_HISTORY) : undefined;
  await runRollout(server, spec, { router, metrics, notifier: new RecordingNotifier() }, async (handle) => {
    // Short hops of skipped time (a couple of seconds each): a long-running sleep RPC can be cut
    // by the test server's keep-alive policy ("excess pings") and then never return.
    let status = await handle.query(statusQuery);
    let reported = 0;
    while (status.phase !== 'awaiting_approval') {
      await server.env().sleep('2m');
      status = await handle.query(statusQuery);
      if (status.decisionPage.total - reported >= 2_000) {
        reported = status.decisionPage.total;
        console.log(`${reported} checks after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
      if (isFinal(status.phase)) throw new Error(`the rollout ended early: ${JSON.stringify(status.outcome)}`);
    }
    const checksPerSecond = status.decisionPage.total / ((Date.now() - started) / 1000);
    console.log(`${status.decisionPage.total} checks in ${((Date.now() - started) / 1000).toFixed(0)} s (${checksPerSecond.toFixed(0)}/s)`);

    expect(Math.abs(status.decisionPage.total - CHECKS)).toBeLessThanOrEqual(1); // one check a second through the bake
    expect(status.decisions).toHaveLength(DECISIONS_KEPT);
    expect(status.decisionPage.earlier.count).toBe(status.decisionPage.total - DECISIONS_KEPT);
    expect(status.decisionPage.earlier.verdicts.pass).toBe(status.decisionPage.earlier.count);
    expect(status.decisions.at(-1)!.seq).toBe(status.decisionPage.total);
    const answerBytes = JSON.stringify(status).length;
    expect(answerBytes).toBeLessThan(512 * 1024);
    // A page is smaller still.
    const page = await handle.query(statusQuery, { limit: 10 });
    expect(page.decisions).toHaveLength(10);
    expect(page.decisionPage.nextBefore).toBe(page.decisions[0]!.seq);

    // It has continued as new many times (history limit), each run's input (the state) bounded.
    const description = await handle.describe();
    const history = await server.env().client.workflow.getHandle(handle.workflowId, description.runId).fetchHistory();
    const started0 = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(started0?.continuedExecutionRunId).toBeTruthy();
    const inputBytes = (started0?.input?.payloads ?? []).reduce((n, p) => n + (p.data?.length ?? 0), 0);
    console.log(`status answer ${(answerBytes / 1024).toFixed(0)} KiB; continue-as-new input ${(inputBytes / 1024).toFixed(0)} KiB`);
    expect(inputBytes).toBeLessThan(1024 * 1024);

    const aborting = await handle.executeUpdate(abortUpdate, { args: [{ reason: 'long enough', by: 'test' }] });
    expect(aborting.phase).toBe('rolling_back');
    const final = await handle.result();
    expect(final.phase).toBe('aborted');
    expect(final.events.at(-1)).toMatchObject({ action: 'abort', via: 'update', by: 'test', applied: true });
    expect(final.outcome?.reason).toBe('long enough');
    expect(router.splits().slice(-2)).toEqual(['100/0', '100']);
    expect(JSON.stringify(final).length).toBeLessThan(512 * 1024);
  }, { historyLimit });
}, 1_500_000);
