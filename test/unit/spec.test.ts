import { routeAt } from '../../src/workflows/state';
import { parseRolloutSpec, type SpecIssue } from '../../src/spec';

const valid = () => ({
  target: 'chat',
  baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
  candidate: { version: 'v2', url: 'https://models.internal/v2' },
  steps: [{ weight: 10, bake: '30s' }, { weight: 50, bake: '30s' }, { weight: 100 }],
  analysis: { interval: '5s', minRequests: 50, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } },
});

function issuesOf(input: unknown): SpecIssue[] {
  const result = parseRolloutSpec(input);
  if (result.ok) throw new Error('expected the spec to be rejected');
  return result.issues;
}

/** Applies `change` to a valid spec and returns the issues it causes. */
function issuesAfter(change: (spec: any) => void): SpecIssue[] {
  const spec = valid();
  change(spec);
  return issuesOf(spec);
}

describe('rollout spec', () => {
  test('the design example is valid; durations become milliseconds', () => {
    const result = parseRolloutSpec(valid());
    expect(result).toEqual({
      ok: true,
      spec: {
        ...valid(),
        steps: [
          { weight: 10, bake: 30_000, gate: 'auto' },
          { weight: 50, bake: 30_000, gate: 'auto' },
          { weight: 100, gate: 'auto' },
        ],
        analysis: { judge: 'sequential', readiness: 'required', maxExtensionChecks: 30, interval: 5_000, minRequests: 50, failureLimit: 2, inconclusiveLimit: 0, maxMetricsOutage: 300_000, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } },
        routing: { kind: 'gateway' },
        metrics: { kind: 'gateway' },
      },
    });
  });

  test('analysis has defaults; the sequential judge is the default one; thresholds are only what was given', () => {
    const spec = valid() as Record<string, unknown>;
    delete spec.analysis;
    const result = parseRolloutSpec(spec);
    expect(result.ok && result.spec.analysis).toEqual({
      judge: 'sequential',
      readiness: 'required',
      maxExtensionChecks: 30,
      interval: 30_000,
      minRequests: 50,
      failureLimit: 2,
      inconclusiveLimit: 0,
      maxMetricsOutage: 300_000,
    });
    // Given thresholds are SLO guardrails for the sequential judge: none is made up.
    const partial = parseRolloutSpec({ ...valid(), analysis: { interval: '5s', thresholds: { maxErrorRate: 0.01 } } });
    expect(partial.ok && partial.spec.analysis.thresholds).toEqual({ maxErrorRate: 0.01 });
  });

  test.each([
    [{ judge: 'threshold', sequential: { alpha: 0.05 } }, 'analysis.sequential', /only the sequential judge reads it, and analysis.judge is "threshold"/],
    [{ judge: 'threshold', readiness: 'advisory' }, 'analysis.readiness', /only the sequential judge reads it/],
    [{ judge: 'threshold', maxExtensionChecks: 5 }, 'analysis.maxExtensionChecks', /only the sequential judge reads it/],
    [{ failureLimit: 3 }, 'analysis.failureLimit', /the sequential judge rolls back at its first failed check/],
    [{ readiness: 'advisory', maxExtensionChecks: 5 }, 'analysis.maxExtensionChecks', /readiness "advisory" a step ends after its bake/],
    [{ inconclusiveLimit: 4, sequential: { maxConsecutiveInconclusive: 6 } }, 'analysis.sequential.maxConsecutiveInconclusive', /inconclusiveLimit is set and takes its place/],
    [{ sequential: { sloAlphaShare: 0.3 } }, 'analysis.sequential.sloAlphaShare', /analysis.thresholds gives none/],
  ])('a field the chosen judge does not read is refused: %j names %s', (analysis, path, message) => {
    const issues = issuesOf({ ...valid(), analysis: { interval: '5s', ...analysis } });
    expect(issues).toEqual([{ path, message: expect.stringMatching(message) }]);
  });

  test('an unread field is reported beside the invalid ones, not instead of them', () => {
    const issues = issuesOf({ ...valid(), analysis: { interval: '5', failureLimit: 3 } });
    expect(issues.map((i) => i.path).sort()).toEqual(['analysis.failureLimit', 'analysis.interval']);
  });

  test('readiness "advisory" is accepted with the sequential judge, and the threshold judge keeps its defaults', () => {
    const advisory = parseRolloutSpec({ ...valid(), analysis: { interval: '5s', readiness: 'advisory' } });
    expect(advisory.ok && advisory.spec.analysis.readiness).toBe('advisory');
    const threshold = parseRolloutSpec({ ...valid(), analysis: { judge: 'threshold', interval: '5s', failureLimit: 3 } });
    expect(threshold.ok && threshold.spec.analysis).toMatchObject({ judge: 'threshold', failureLimit: 3 });
  });

  test('the sequential judge and its options are accepted', () => {
    const result = parseRolloutSpec({ ...valid(), analysis: { interval: '5s', judge: 'sequential', sequential: { alpha: 0.05, tolerances: { latency: 1.5 } } } });
    expect(result.ok && result.spec.analysis).toMatchObject({ judge: 'sequential', sequential: { alpha: 0.05, tolerances: { latency: 1.5 } } });
  });

  test('a manual gate and a webhook are accepted', () => {
    const result = parseRolloutSpec({
      ...valid(),
      steps: [{ weight: 10, bake: '30s', gate: 'manual' }, { weight: 100 }],
      notify: { webhook: 'https://hooks.example.com/canary' },
    });
    expect(result.ok).toBe(true);
  });

  test.each([
    ['an upper-case target', (s: any) => (s.target = 'Chat'), 'target', /DNS-label-like/],
    ['a target starting with a digit', (s: any) => (s.target = '1chat'), 'target', /DNS-label-like/],
    ['a target ending with a dash', (s: any) => (s.target = 'chat-'), 'target', /DNS-label-like/],
    ['a 64-character target', (s: any) => (s.target = 'a'.repeat(64)), 'target', /at most 63/],
    ['a missing target', (s: any) => delete s.target, 'target', /target must be a string/],
    ['a non-http baseline url', (s: any) => (s.baseline.url = 'ftp://host/model'), 'baseline.url', /http\(s\) URL/],
    ['a relative candidate url', (s: any) => (s.candidate.url = '/v2'), 'candidate.url', /http\(s\) URL/],
    ['a version with spaces', (s: any) => (s.baseline.version = 'v 1'), 'baseline.version', /letters, digits/],
    ['equal versions', (s: any) => (s.candidate.version = 'v1'), 'candidate.version', /must differ from baseline.version/],
    ['a missing baseline', (s: any) => delete s.baseline, 'baseline', /object with "version"/],
    ['no steps', (s: any) => (s.steps = []), 'steps', /at least one step/],
    ['steps that are not an array', (s: any) => (s.steps = 'fast'), 'steps', /must be an array/],
    ['a zero weight', (s: any) => (s.steps[0].weight = 0), 'steps.0.weight', /above 0/],
    ['a weight over 100', (s: any) => (s.steps[2].weight = 101), 'steps.2.weight', /at most 100/],
    ['a weight that is a string', (s: any) => (s.steps[0].weight = '10'), 'steps.0.weight', /must be a number/],
    ['weights that do not increase', (s: any) => (s.steps[1].weight = 10), 'steps.1.weight', /above the previous step's \(10\)/],
    ['a last step below 100', (s: any) => s.steps.pop(), 'steps.1.weight', /last step must have weight 100/],
    ['a bake shorter than the interval', (s: any) => (s.steps[0].bake = '1s'), 'steps.0.bake', /at least analysis.interval/],
    ['a bake that is not a duration', (s: any) => (s.steps[0].bake = 'soon'), 'steps.0.bake', /"soon" is not a duration/],
    ['a numeric bake', (s: any) => (s.steps[0].bake = 30), 'steps.0.bake', /duration string/],
    ['an unknown gate', (s: any) => (s.steps[0].gate = 'maybe'), 'steps.0.gate', /"auto" or "manual"/],
    ['an interval that is not a duration', (s: any) => (s.analysis.interval = '5'), 'analysis.interval', /not a duration/],
    ['a fractional minRequests', (s: any) => (s.analysis.minRequests = 1.5), 'analysis.minRequests', /whole number/],
    ['a zero failureLimit', (s: any) => Object.assign(s.analysis, { judge: 'threshold', failureLimit: 0 }), 'analysis.failureLimit', /at least 1/],
    ['a negative inconclusiveLimit', (s: any) => (s.analysis.inconclusiveLimit = -1), 'analysis.inconclusiveLimit', /at least 0/],
    ['an error rate above 1', (s: any) => (s.analysis.thresholds.maxErrorRate = 5), 'analysis.thresholds.maxErrorRate', /between 0 and 1/],
    ['a zero latency threshold', (s: any) => (s.analysis.thresholds.maxLatencyP95Ms = 0), 'analysis.thresholds.maxLatencyP95Ms', /above 0/],
    ['an unknown judge', (s: any) => (s.analysis.judge = 'vibes'), 'analysis.judge', /"threshold" or "sequential"/],
    ['a sequential alpha of 1', (s: any) => (s.analysis.sequential = { alpha: 1 }), 'analysis.sequential.alpha', /below 1/],
    ['a tolerance below 1', (s: any) => (s.analysis.sequential = { tolerances: { errors: 0.9 } }), 'analysis.sequential.tolerances.errors', /at least 1/],
    ['a negative maxExtensionChecks', (s: any) => (s.analysis.maxExtensionChecks = -1), 'analysis.maxExtensionChecks', /at least 0/],
    ['a webhook that is not a URL', (s: any) => (s.notify = { webhook: 'slack' }), 'notify.webhook', /http\(s\) URL/],
    ['an unknown top-level field', (s: any) => (s.replicas = 3), '(root)', /unknown field\(s\): replicas/],
    ['an unknown step field', (s: any) => (s.steps[0].pause = true), 'steps.0', /unknown field\(s\): pause/],
    // Nothing may make time stand still or run away (issue 8, finding 4).
    ['a zero interval', (s: any) => (s.analysis.interval = '0s'), 'analysis.interval', /between 1s and 1h/],
    ['a sub-second interval', (s: any) => (s.analysis.interval = '500ms'), 'analysis.interval', /between 1s and 1h/],
    ['an enormous bake', (s: any) => (s.steps[0].bake = '99999999999999999999d'), 'steps.0.bake', /between 1s and 720h/],
    ['a zero metrics outage limit', (s: any) => (s.analysis.maxMetricsOutage = '0s'), 'analysis.maxMetricsOutage', /between 1s and 24h/],
    ['an enormous maxExtensionChecks', (s: any) => (s.analysis.maxExtensionChecks = 1e9), 'analysis.maxExtensionChecks', /at most 100000/],
    ['too many steps', (s: any) => (s.steps = Array.from({ length: 101 }, (_, i) => ({ weight: (i + 1) * 0.5 }))), 'steps', /at most 100 steps/],
    // Weights at the gateway's resolution: 10,000 buckets, 0.01% each (finding 1).
    ['a weight finer than 0.01', (s: any) => (s.steps[0].weight = 12.345), 'steps.0.weight', /steps of 0.01/],
    ['a weight above 0 but below 0.01', (s: any) => (s.steps[0].weight = 1e-81), 'steps.0.weight', /steps of 0.01/],
    // The gateway's rules are the spec's (finding 9).
    ['a reserved target', (s: any) => (s.target = 'admin'), 'target', /reserved by the gateway/],
    ['a model URL with a query', (s: any) => (s.baseline.url = 'http://127.0.0.1:9001/?key=1'), 'baseline.url', /must not have a query/],
    ['a model URL with a fragment', (s: any) => (s.candidate.url = 'http://127.0.0.1:9002/#v2'), 'candidate.url', /must not have a fragment/],
  ])('rejects %s, naming %s', (_name, change, path, message) => {
    const issues = issuesAfter(change);
    const issue = issues.find((i) => i.path === path);
    expect(issue).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  test('fractional weights at 0.01% are accepted, and the baseline gets the exact complement', () => {
    const result = parseRolloutSpec({ ...valid(), steps: [{ weight: 0.01, bake: '30s' }, { weight: 12.5, bake: '30s' }, { weight: 100 }] });
    expect(result.ok && result.spec.steps.map((s) => s.weight)).toEqual([0.01, 12.5, 100]);
    if (!result.ok) return;
    expect(routeAt(result.spec, 0.07).versions.map((v) => v.weight)).toEqual([99.93, 0.07]);
    expect(routeAt(result.spec, 12.5).versions.map((v) => v.weight)).toEqual([87.5, 12.5]);
  });

  test('every problem is reported at once, cross-field rules included', () => {
    const issues = issuesAfter((s) => {
      s.target = 'Bad!';
      s.candidate.version = 'v1';
      s.steps = [{ weight: 50, bake: '1s' }, { weight: 40, bake: 'x' }];
      s.analysis.extra = true;
    });
    expect(issues.map((i) => i.path).sort()).toEqual(
      ['analysis', 'candidate.version', 'steps.0.bake', 'steps.1.bake', 'steps.1.weight', 'steps.1.weight', 'target'].sort(),
    );
  });

  test.each([null, 42, 'spec', [1, 2]])('a spec that is not an object (%j) is one clear issue', (input) => {
    expect(issuesOf(input)).toEqual([{ path: '(root)', message: 'the rollout spec must be a JSON object' }]);
  });
});

describe('rollout spec: routing and metrics adapters', () => {
  const issuesOf = (input: unknown) => {
    const result = parseRolloutSpec(input);
    return result.ok ? [] : result.issues;
  };

  test('an unknown kind is refused, naming the kinds there are', () => {
    const routing = issuesOf({ ...valid(), routing: { kind: 'envoy' } });
    expect(routing).toEqual([expect.objectContaining({ path: expect.stringMatching(/^routing/), message: expect.stringMatching(/routing\.kind must be one of "gateway"/) })]);
    const metrics = issuesOf({ ...valid(), metrics: { kind: 'datadog' } });
    expect(metrics).toEqual([expect.objectContaining({ path: expect.stringMatching(/^metrics/), message: expect.stringMatching(/metrics\.kind must be one of "gateway"/) })]);
  });

  test("an option the kind does not have is refused, naming it (the gateway's are the worker's settings)", () => {
    const issues = issuesOf({ ...valid(), routing: { kind: 'gateway', url: 'http://elsewhere:8080' } });
    expect(issues).toEqual([expect.objectContaining({ path: 'routing', message: expect.stringMatching(/unknown field\(s\): url/) })]);
  });

  test('the Gateway API router needs a backend for each version, and no URLs', () => {
    const spec = valid() as any;
    const issues = issuesOf({
      ...spec,
      routing: { kind: 'gateway-api', namespace: 'models', httpRoute: 'chat', rule: { index: 0 }, backends: { v1: { name: 'chat-v1', port: 80 } } },
      metrics: { kind: 'prometheus', url: 'http://127.0.0.1:9090', preset: 'istio' },
    });
    expect(issues.map((i) => i.path)).toEqual(['baseline.url', 'candidate.url', 'routing.backends']);
    expect(issues[2]!.message).toMatch(/routing\.backends has no entry for version v2/);
  });

  test('the embedded gateway\'s counts see only traffic it routes: another router needs another metric source', () => {
    const issues = issuesOf({ ...valid(), routing: { kind: 'nginx', configDir: '/etc/nginx/model-canary', listen: '8081' } });
    expect(issues).toEqual([{ path: 'metrics.kind', message: expect.stringMatching(/metrics\.kind "gateway" sees only traffic routed by "gateway", and routing\.kind is "nginx"/) }]);
  });

  test('a router that sends traffic to URLs needs each version\'s url', () => {
    const spec = valid() as any;
    delete spec.candidate.url;
    expect(issuesOf(spec)).toEqual([{ path: 'candidate.url', message: expect.stringMatching(/candidate\.url is required with routing\.kind "gateway"/) }]);
  });
});
