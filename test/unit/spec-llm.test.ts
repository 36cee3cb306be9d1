/** The spec's LLM fields: shadow and header-match steps, analysis.metrics and evaluator, versions' pricing. */
import { parseRolloutSpec, type RolloutSpecInput } from '../../src/spec';
import { routeForStep } from '../../src/workflows/state';
import { specInput } from '../helpers/specs';

const sequential = { interval: '30s' } as const;
const parse = (overrides: Partial<RolloutSpecInput>) => parseRolloutSpec(specInput({ analysis: sequential, ...overrides }));
const messages = (overrides: Partial<RolloutSpecInput>) => {
  const result = parse(overrides);
  return result.ok ? [] : result.issues.map((i) => `${i.path}: ${i.message}`);
};

describe('spec: shadow and header-match steps', () => {
  it('takes a shadow step before the live ones, at weight 0, and routes it with a mirror', () => {
    const result = parse({
      steps: [{ shadow: 10, bake: '10m' }, { weight: 10, bake: '10m', match: { header: 'X-Canary-User', values: ['internal'] } }, { weight: 100 }],
      analysis: { ...sequential, evaluator: { url: 'http://127.0.0.1:9100/evaluate', sample: 0.5 } },
    });
    if (!result.ok) throw new Error(JSON.stringify(result.issues));
    const [shadow, matched] = result.spec.steps;
    expect(shadow).toMatchObject({ shadow: 10, weight: 0 });
    expect(matched!.match).toEqual({ header: 'x-canary-user', values: ['internal'] });
    expect(routeForStep(result.spec, shadow!)).toMatchObject({
      versions: [{ version: 'v1', weight: 100 }, { version: 'v2', weight: 0 }],
      mirror: { from: 'v1', to: 'v2', percent: 10, evaluator: { url: 'http://127.0.0.1:9100/evaluate', sample: 0.5 } },
    });
    expect(routeForStep(result.spec, matched!)).toMatchObject({ versions: [{ weight: 90 }, { weight: 10 }], match: { header: 'x-canary-user', values: ['internal'], others: 'v1' } });
  });

  it('takes internal users first at 100%, then a ladder for everyone', () => {
    const steps = [{ weight: 100, bake: '1h', match: { header: 'x-canary-user', values: ['internal'] } }, { weight: 5, bake: '1h' }, { weight: 50 }, { weight: 100 }];
    expect(messages({ steps })).toEqual([]);
    expect(messages({ steps: [{ weight: 100, match: { header: 'x-u', values: ['a'] } }, { weight: 100 }] })).toEqual([]);
    expect(messages({ steps: [{ weight: 50 }, { weight: 50 }, { weight: 100 }] })).toContain("steps.1.weight: weight must be above the previous step's (50)");
  });

  it('refuses what cannot work, naming the field', () => {
    expect(messages({ steps: [{ weight: 10 }, { shadow: 10 }, { weight: 100 }] })).toContain('steps.1.shadow: a shadow step must come before every live step (it compares the candidate before any user sees it)');
    expect(messages({ steps: [{ shadow: 10, weight: 5 }, { weight: 100 }] })[0]).toMatch(/^steps\.0\.shadow: a step is either live \(weight\) or shadow/);
    expect(messages({ steps: [{ bake: '1m' }, { weight: 100 }] })).toContain('steps.0.weight: weight is required (or shadow, for a shadow step)');
    expect(messages({ steps: [{ weight: 100, match: { header: 'x-user', values: ['a'] } }] })).toContain('steps.0.match: the last step sends every request to the candidate, so it cannot match a header');
    expect(messages({ steps: [{ weight: 10, match: { header: 'x_user', values: ['a'] } }, { weight: 100 }] })[0]).toMatch(/^steps\.0\.match\.header: match\.header must be an HTTP header name/);
    expect(messages({ steps: [{ weight: 10, match: { header: 'x-user', values: [] } }, { weight: 100 }] })[0]).toMatch(/match\.values must list at least one value/);
    expect(messages({ steps: [{ shadow: 10 }, { weight: 100 }], routing: { kind: 'nginx', configDir: '/tmp/x', reload: ['true'] } as never })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^steps\.0\.shadow: steps\.0\.shadow needs a router that mirrors traffic, and routing\.kind "nginx" does not/)]),
    );
    expect(messages({ analysis: { ...sequential, evaluator: { url: 'http://127.0.0.1:9/e' } } })).toContain(
      'analysis.evaluator: analysis.evaluator is not read here: it judges the mirrored pairs of a shadow step, and steps has none',
    );
  });
});

describe('spec: analysis.metrics and pricing', () => {
  it('takes gate metrics with tolerances, and refuses unknown ones', () => {
    const result = parse({ analysis: { ...sequential, metrics: { ttft: { tolerance: 1.5 }, outputTokens: {} } } });
    if (!result.ok) throw new Error(JSON.stringify(result.issues));
    expect(result.spec.analysis.metrics).toEqual({ ttft: { tolerance: 1.5 }, outputTokens: {} });
    expect(messages({ analysis: { ...sequential, metrics: { ttft: { tolerance: 0.5 } } } })).toContain('analysis.metrics.ttft.tolerance: metrics.ttft.tolerance must be at least 1 (a ratio candidate/baseline)');
    expect(messages({ analysis: { ...sequential, metrics: { tft: {} } as never } })[0]).toMatch(/^analysis\.metrics: unknown field\(s\): tft/);
    expect(messages({ analysis: { ...sequential, metrics: {} } })).toContain('analysis.metrics: metrics must name at least one gate metric');
    expect(messages({ analysis: { judge: 'threshold', metrics: { ttft: {} } } as never })).toContain(
      'analysis.metrics: metrics is not read here: only the sequential judge reads it, and analysis.judge is "threshold"',
    );
  });

  it('needs both versions priced to gate on cost', () => {
    expect(messages({ analysis: { ...sequential, metrics: { cost: {} } } })).toEqual([
      'baseline.pricing: baseline.pricing is required: analysis.metrics.cost compares the versions\' cost per request',
      'candidate.pricing: candidate.pricing is required: analysis.metrics.cost compares the versions\' cost per request',
    ]);
    const priced = parse({
      baseline: { version: 'v1', url: 'http://127.0.0.1:9001', pricing: { inputPer1M: 1, outputPer1M: 2 } },
      candidate: { version: 'v2', url: 'http://127.0.0.1:9002', pricing: { inputPer1M: 0.5, outputPer1M: 1 } },
      analysis: { ...sequential, metrics: { cost: { tolerance: 1.1 } } },
    });
    expect(priced.ok).toBe(true);
    expect(messages({ candidate: { version: 'v2', url: 'http://127.0.0.1:9002', pricing: { inputPer1M: -1 } } as never })[0]).toMatch(/candidate\.pricing/);
  });
});
