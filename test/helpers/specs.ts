import { analysisSchema, parseRolloutSpec, type AnalysisSpec, type RolloutSpec, type RolloutSpecInput } from '../../src/spec';

let counter = 0;

/** A unique target name per test, so rollouts never collide. */
export function uniqueTarget(prefix = 'model'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.floor(Math.random() * 1e6)}`;
}

export function specInput(overrides: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    target: uniqueTarget(),
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    steps: [
      { weight: 10, bake: '1h' },
      { weight: 50, bake: '1h' },
      { weight: 100 },
    ],
    // The threshold judge: these specs test the control plane's mechanics with scripted metrics.
    analysis: { judge: 'threshold', interval: '10m', minRequests: 50, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } },
    ...overrides,
  };
}

/** A validated spec (throws on a mistake in the test itself). */
export function makeSpec(overrides: Partial<RolloutSpecInput> = {}): RolloutSpec {
  const result = parseRolloutSpec(specInput(overrides));
  if (!result.ok) throw new Error(`bad test spec: ${JSON.stringify(result.issues)}`);
  return result.spec;
}

/** The `analysis` of a spec as validation leaves it (defaults filled in; a 30 s interval unless given). */
export function analysisOf(input: RolloutSpecInput['analysis'] = {}): AnalysisSpec {
  return analysisSchema.parse({ interval: '30s', ...input });
}
