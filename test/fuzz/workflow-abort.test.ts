/**
 * Abort always works (issue 8): specs drawn at random — fractional and tiny weights, odd bakes and
 * intervals, every judge option — that the API would accept are each run through the real
 * workflow (time-skipping server) and aborted. Every one ends, with traffic back at the baseline.
 */
import fc from 'fast-check';
import { parseRolloutSpec, unreadAnalysisFields, type RolloutSpec } from '../../src/spec';
import { abortUpdate, statusQuery } from '../../src/workflows/messages';
import { isFinal } from '../../src/workflows/status';
import { RecordingNotifier, RecordingRouter, ScriptedMetrics } from '../helpers/adapters';
import { runRollout, useTimeSkippingServer } from '../helpers/rollout-harness';
import { uniqueTarget } from '../helpers/specs';

const server = useTimeSkippingServer();
const SAMPLE = 24;

const durations = fc.constantFrom('1s', '2s', '5s', '30s', '90s', '10m', '1h', '1h30m', '3d', '0s', '500ms', '1.5s', 'soon');
const weight = fc.oneof(
  fc.integer({ min: 1, max: 100 }),
  fc.constantFrom(0.01, 0.07, 0.5, 12.5, 33.33, 99.99),
  fc.double({ min: 0, max: 100, noNaN: true }),
);
const step = fc.record(
  { weight, bake: durations, gate: fc.constantFrom('auto', 'manual') },
  { requiredKeys: ['weight'] },
);
const sequential = fc.record(
  {
    alpha: fc.constantFrom(0.001, 0.01, 0.2, 0.5),
    tolerances: fc.record({ errors: fc.constantFrom(1, 1.2, 3), latency: fc.constantFrom(1, 1.25, 10) }, { requiredKeys: [] }),
    readyAlpha: fc.constantFrom(0.05, 0.1, 0.9),
    readyMinRequests: fc.constantFrom(0, 10, 100_000),
    maxConsecutiveInconclusive: fc.constantFrom(0, 1, 5),
    catastrophicErrorRate: fc.constantFrom(0, 0.2, 1),
    alternatives: fc.array(fc.constantFrom(1.1, 2, 5, 1000), { minLength: 1, maxLength: 4 }),
  },
  { requiredKeys: [] },
);
const analysis = fc.record(
  {
    judge: fc.constantFrom('sequential', 'threshold'),
    interval: durations,
    minRequests: fc.constantFrom(1, 50, 100_000_000),
    failureLimit: fc.constantFrom(1, 2, 1000),
    inconclusiveLimit: fc.constantFrom(0, 1, 3),
    maxExtensionChecks: fc.constantFrom(0, 5, 100_000),
    maxMetricsOutage: durations,
    thresholds: fc.record({ maxErrorRate: fc.constantFrom(0, 0.05, 1), maxLatencyP95Ms: fc.constantFrom(0.001, 800, 1e9) }, { requiredKeys: [] }),
    sequential,
  },
  { requiredKeys: [] },
);
const specInput = fc.record({
  steps: fc.array(step, { minLength: 1, maxLength: 5 }).map((steps) => [...steps.sort((a, b) => a.weight - b.weight), { weight: 100 }]),
  analysis,
});

/** A bounded sample of random specs that validation accepts (fixed seed: the same sample every run). */
function validSpecs(): RolloutSpec[] {
  const specs: RolloutSpec[] = [];
  for (const input of fc.sample(specInput, { seed: 8_2026, numRuns: 4_000 })) {
    const candidate: Record<string, unknown> = {
      target: uniqueTarget('fuzz'),
      baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
      candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
      ...input,
    };
    // Options the drawn judge does not read are refused (a 400 of their own, tested in spec.test.ts): leave them out.
    for (const { path } of unreadAnalysisFields(candidate)) deleteAt(candidate, path);
    const parsed = parseRolloutSpec(candidate);
    if (parsed.ok) specs.push(parsed.spec);
    if (specs.length === SAMPLE) break;
  }
  return specs;
}

function deleteAt(value: Record<string, unknown>, path: Array<string | number>): void {
  const parent = path.slice(0, -1).reduce<Record<string, unknown> | undefined>((at, key) => at?.[key] as Record<string, unknown> | undefined, value);
  if (parent) delete parent[path[path.length - 1]!];
}

const specs = validSpecs();
if (process.env.PRINT_SPECS) for (const [i, s] of specs.entries()) console.log(i, JSON.stringify({ steps: s.steps, analysis: s.analysis }));

test('the sample is large and varied enough to mean something', () => {
  expect(specs).toHaveLength(SAMPLE);
  expect(specs.some((s) => s.steps.some((st) => !Number.isInteger(st.weight)))).toBe(true);
  expect(specs.some((s) => s.analysis.judge === 'threshold')).toBe(true);
  expect(specs.some((s) => s.steps.some((st) => st.gate === 'manual'))).toBe(true);
});

test.each(specs.map((spec, i) => [i, spec.steps.map((s) => s.weight).join('→'), spec] as const))(
  'valid spec #%i (%s): abort brings traffic back to the baseline',
  async (_i, _weights, spec) => {
    const router = new RecordingRouter();
    const metrics = new ScriptedMetrics();
    await runRollout(server, spec, { router, metrics, notifier: new RecordingNotifier() }, async (handle) => {
      // Let it run into its first step (or end on its own), skipping workflow time in hops.
      let status = await handle.query(statusQuery);
      for (let hop = 0; hop < 20 && !isFinal(status.phase) && status.weights.candidate === 0; hop++) {
        await server.env().sleep('2s');
        status = await handle.query(statusQuery);
      }
      if (!isFinal(status.phase) && status.phase !== 'rolling_back') {
        try {
          const answer = await handle.executeUpdate(abortUpdate, { args: [{ reason: 'fuzz' }] });
          expect(answer.phase).toBe('rolling_back');
        } catch (err) {
          // Refused only when the rollout ended (or began rolling back) on its own meanwhile.
          const now = await handle.query(statusQuery);
          if (!isFinal(now.phase) && now.phase !== 'rolling_back') throw new Error(`abort failed while ${now.phase}: ${String(err)}`);
        }
      }
      const result = await handle.result();
      expect(isFinal(result.phase)).toBe(true);
      if (result.phase === 'promoted') {
        expect(result.weights).toEqual({ baseline: 0, candidate: 100 });
      } else {
        expect(result.phase === 'aborted' || result.phase === 'rolled_back').toBe(true);
        expect(result.weights).toEqual({ baseline: 100, candidate: 0 });
        expect(router.splits().at(-1)).toBe('100');
      }
    });
  },
);
