/** The demo evaluator (src/demo/evaluator.ts): its rules, and POST /evaluate over HTTP. */
import { evaluate, looksTruncated, promptKeywords, startEvaluator, type Evaluator } from '../../src/demo/evaluator';
import { startModelServer } from '../../src/demo/model-server';

const prompt = (text: string, extra: Record<string, unknown> = {}) => ({
  model: 'demo',
  messages: [
    { role: 'system', content: 'Answer about geography.' },
    { role: 'user', content: 'What about rivers?' },
    { role: 'assistant', content: 'Which ones?' },
    { role: 'user', content: text },
  ],
  ...extra,
});

const P = prompt('Which river flows through Paris?');
const GOOD = 'The Seine flows through Paris, on its way to the English Channel.';

describe('rules', () => {
  test('keywords come from the last user message, 4+ letters, no stop words', () => {
    expect(promptKeywords(P)).toEqual(['river', 'flows', 'paris']);
    expect(promptKeywords({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise Hamlet' }] }] })).toEqual(['summarise', 'hamlet']);
    expect(promptKeywords(undefined)).toEqual([]);
  });

  test('truncated-looking: a cut between tokens, unbalanced brackets or quotes; in JSON mode, JSON that does not parse', () => {
    expect(looksTruncated('the quick brown ', false)).toBe(true);
    expect(looksTruncated('a list: (one, two', false)).toBe(true);
    expect(looksTruncated('he said "stop', false)).toBe(true);
    expect(looksTruncated('and then,', false)).toBe(true);
    expect(looksTruncated(GOOD, false)).toBe(false);
    expect(looksTruncated('{"answer": "x"', true)).toBe(true);
    expect(looksTruncated('{"answer": "x"}', true)).toBe(false);
  });

  test('equal answers, or equally good ones, are "same"', () => {
    expect(evaluate(P, GOOD, GOOD)).toMatchObject({ verdict: 'same', reason: 'neither answer has a defect' });
    expect(evaluate(P, GOOD, 'Paris sits on the Seine, a river that flows to the sea.').verdict).toBe('same');
  });

  test('an empty candidate is worse; an empty baseline makes a good candidate better', () => {
    const empty = evaluate(P, GOOD, '   ');
    expect(empty).toMatchObject({ verdict: 'worse', candidate: ['empty'], baseline: [] });
    expect(empty.reason).toMatch(/candidate: empty/);
    expect(evaluate(P, '', GOOD).verdict).toBe('better');
  });

  test('a truncated-looking answer loses', () => {
    expect(evaluate(P, GOOD, 'The Seine flows through Paris, on its way to the ').verdict).toBe('worse');
    expect(evaluate(P, 'The Seine flows through Paris (mostly', GOOD).verdict).toBe('better');
  });

  test('much longer (>1.5×) or shorter (<0.67×) than the baseline loses', () => {
    const longer = evaluate(P, GOOD, `${GOOD} ${GOOD}`);
    expect(longer).toMatchObject({ verdict: 'worse', candidate: ['much longer'] });
    expect(evaluate(P, GOOD, 'The Seine flows through Paris.')).toMatchObject({ verdict: 'worse', candidate: ['much shorter'] });
    // Within the bounds: same.
    expect(evaluate(P, GOOD, `${GOOD} It is long.`).verdict).toBe('same');
  });

  test("an answer with none of the prompt's keywords loses", () => {
    expect(evaluate(P, GOOD, 'I like turtles and the colour of the sky at dusk, really.')).toMatchObject({ verdict: 'worse', candidate: ['off-topic'] });
    expect(evaluate(P, 'Bananas are yellow when they are ripe, mostly.', GOOD).verdict).toBe('better');
  });

  test('JSON mode: broken JSON loses to valid JSON', () => {
    const J = prompt('Which river flows through Paris?', { response_format: { type: 'json_object' } });
    expect(evaluate(J, '{"answer": "The Seine flows through Paris"}', '{"answer": "The Seine flows through Paris"').verdict).toBe('worse');
    expect(evaluate(J, '{"answer": "The Seine flows through Paris"}', '{"answer": "The Seine flows through Paris"}').verdict).toBe('same');
  });
});

describe('POST /evaluate', () => {
  let evaluator: Evaluator;
  beforeAll(async () => {
    evaluator = await startEvaluator({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => evaluator.close());

  const post = async (body: unknown) => {
    const res = await fetch(`${evaluator.url}/evaluate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };

  test('listens on 127.0.0.1 and answers a verdict with its reason', async () => {
    expect(evaluator.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${evaluator.url}/healthz`)).status).toBe(200);
    const r = await post({ prompt: P, baseline: GOOD, candidate: '' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ verdict: 'worse', candidate: ['empty'] });
    expect(typeof r.body.reason).toBe('string');
  });

  test('bad requests: 400 for a body that is not JSON or lacks the answers, 404 / 405 elsewhere', async () => {
    expect((await post('{nope')).status).toBe(400);
    expect((await post({ prompt: P, baseline: GOOD })).status).toBe(400);
    expect((await post({ prompt: 'text', baseline: GOOD, candidate: GOOD })).status).toBe(400);
    expect((await fetch(`${evaluator.url}/evaluate`)).status).toBe(405);
    expect((await fetch(`${evaluator.url}/nope`, { method: 'POST' })).status).toBe(404);
  });

  test("judges the demo model's answers: a truncating or 2×-token candidate is worse, broken JSON is worse", async () => {
    const base = { version: 'x', latencyMs: 0, latencySpread: 0 };
    const [baseline, truncating, costly, brokenJson] = await Promise.all([
      startModelServer({ ...base, answerTokens: 12 }),
      startModelServer({ ...base, answerTokens: 12, truncationRate: 1 }),
      startModelServer({ ...base, answerTokens: 24 }),
      startModelServer({ ...base, answerTokens: 12, invalidJsonRate: 1 }),
    ]);
    try {
      const answer = async (url: string, body: Record<string, unknown>) => {
        const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
        return ((await res.json()) as any).choices[0].message.content as string;
      };
      // A prompt whose keywords the demo's fixed words contain, so that only the knobs differ.
      const demoPrompt = { messages: [{ role: 'user', content: 'Tell me about the quick brown fox' }] };
      const verdict = async (other: string, body: Record<string, unknown>) =>
        (await post({ prompt: body, baseline: await answer(baseline.url, body), candidate: await answer(other, body) })).body.verdict;
      expect(await verdict(baseline.url, demoPrompt)).toBe('same');
      expect(await verdict(truncating.url, demoPrompt)).toBe('worse');
      expect(await verdict(costly.url, demoPrompt)).toBe('worse');
      const jsonPrompt = { ...demoPrompt, response_format: { type: 'json_object' } };
      expect(await verdict(baseline.url, jsonPrompt)).toBe('same');
      expect(await verdict(brokenJson.url, jsonPrompt)).toBe('worse');
    } finally {
      await Promise.all([baseline, truncating, costly, brokenJson].map((s) => s.close()));
    }
  });
});
