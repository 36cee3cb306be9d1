/** The demo model server's answer knobs (src/demo/model-server.ts): length, truncation, JSON mode, usage, inter-token gaps. */
import { optionsFromArgs, planAnswer, startModelServer, type ModelServer, type ModelServerOptions } from '../../src/demo/model-server';
import { runConcurrently } from '../gateway/helpers';

const servers: ModelServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function model(options: Omit<ModelServerOptions, 'version'>): Promise<ModelServer> {
  const server = await startModelServer({ version: 'm', latencyMs: 0, latencySpread: 0, ttftMs: 0, ...options });
  servers.push(server);
  return server;
}

async function chat(server: ModelServer, body: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json();
}

/** A streamed answer's `data:` payloads (parsed, [DONE] as the string) and when each arrived (ms). */
async function stream(server: ModelServer, body: Record<string, unknown>): Promise<Array<{ at: number; data: any }>> {
  const t0 = performance.now();
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const events: Array<{ at: number; data: any }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const at = performance.now() - t0;
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const text = event.replace(/^data: /, '');
      events.push({ at, data: text === '[DONE]' ? text : JSON.parse(text) });
    }
  }
  return events;
}

const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: [{ type: 'text', text: 'name three' }, { type: 'text', text: 'colours please' }] },
];
const PROMPT_WORDS = 3 + 4;

const metricValue = (text: string, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);

describe('answer length', () => {
  test('without answerTokens, as before: min(maxTokens, max_tokens) words, finish_reason stop', async () => {
    const server = await model({ maxTokens: 6 });
    const a = await chat(server, { messages, max_tokens: 4 });
    expect(a.choices[0].message.content).toBe('the quick brown fox');
    expect(a.choices[0].finish_reason).toBe('stop');
    expect(a.usage).toEqual({ prompt_tokens: PROMPT_WORDS, completion_tokens: 4, total_tokens: PROMPT_WORDS + 4 });
    expect((await chat(server, { messages })).usage.completion_tokens).toBe(6);
  });

  test('answerTokens sets the natural length (beyond the default maxTokens); max_tokens below it cuts with "length"', async () => {
    const server = await model({ answerTokens: 64 });
    const whole = await chat(server, { messages });
    expect(whole.usage.completion_tokens).toBe(64);
    expect(whole.choices[0].message.content.split(' ')).toHaveLength(64);
    expect(whole.choices[0].finish_reason).toBe('stop');
    const cut = await chat(server, { messages, max_tokens: 10 });
    expect(cut.usage.completion_tokens).toBe(10);
    expect(cut.choices[0].finish_reason).toBe('length');
  });

  test('truncationRate: about that share stops early with "length" (400 answers, generous bounds)', async () => {
    const server = await model({ answerTokens: 12, truncationRate: 0.3 });
    let truncated = 0;
    await runConcurrently(400, 16, async () => {
      const a = await chat(server, { messages });
      const tokens = a.usage.completion_tokens as number;
      expect(a.choices[0].message.content.split(' ').filter(Boolean)).toHaveLength(tokens);
      if (a.choices[0].finish_reason === 'length') {
        truncated++;
        expect(tokens).toBeGreaterThanOrEqual(3);
        expect(tokens).toBeLessThanOrEqual(9);
      } else {
        expect(a.choices[0].finish_reason).toBe('stop');
        expect(tokens).toBe(12);
      }
    });
    // Binomial(400, 0.3): mean 120, sd 9.2; 80..160 is over 4 sd either way.
    expect(truncated).toBeGreaterThan(80);
    expect(truncated).toBeLessThan(160);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`vllm:request_success_total{model_name="m",finished_reason="length"} ${truncated}\n`);
  });

  test('planAnswer: a truncation keeps a quarter to three quarters of the answer', () => {
    const knobs = { maxTokens: 32, answerTokens: 20, truncationRate: 1, invalidJsonRate: 0 };
    expect(planAnswer({}, knobs, () => 0).tokens).toHaveLength(5);
    expect(planAnswer({}, knobs, () => 0.999).tokens).toHaveLength(14);
    expect(planAnswer({}, { ...knobs, truncationRate: 0 }).finishReason).toBe('stop');
  });
});

describe('JSON mode', () => {
  test('json_object: valid JSON {"answer": ...}; json_schema: its first property as the key; none: plain text', async () => {
    const server = await model({ answerTokens: 5 });
    const a = await chat(server, { messages, response_format: { type: 'json_object' } });
    expect(JSON.parse(a.choices[0].message.content)).toEqual({ answer: 'the quick brown fox jumps' });
    expect(a.usage.completion_tokens).toBe(5);
    const s = await chat(server, {
      messages,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { summary: { type: 'string' } } } } },
    });
    expect(JSON.parse(s.choices[0].message.content)).toEqual({ summary: 'the quick brown fox jumps' });
    expect((await chat(server, { messages, response_format: { type: 'text' } })).choices[0].message.content).toBe('the quick brown fox jumps');
  });

  test('invalidJsonRate: about that share does not parse (200 answers); a truncated JSON answer never parses', async () => {
    const server = await model({ answerTokens: 6, invalidJsonRate: 0.5 });
    let broken = 0;
    await runConcurrently(200, 16, async () => {
      const a = await chat(server, { messages, response_format: { type: 'json_object' } });
      try {
        expect(JSON.parse(a.choices[0].message.content)).toEqual({ answer: 'the quick brown fox jumps over' });
      } catch {
        broken++;
      }
    });
    // Binomial(200, 0.5): mean 100, sd 7.1.
    expect(broken).toBeGreaterThan(65);
    expect(broken).toBeLessThan(135);
    const cut = await model({ answerTokens: 6, truncationRate: 1 });
    for (let i = 0; i < 5; i++) {
      const a = await chat(cut, { messages, response_format: { type: 'json_object' } });
      expect(() => JSON.parse(a.choices[0].message.content)).toThrow();
    }
  });

  test('a streamed JSON answer is the same JSON, a token per chunk', async () => {
    const server = await model({ answerTokens: 4, tokensPerSecond: 0 });
    const events = await stream(server, { messages, response_format: { type: 'json_object' } });
    const content = events.flatMap((e) => (e.data !== '[DONE]' && e.data.choices[0]?.delta.content) || []).join('');
    expect(JSON.parse(content)).toEqual({ answer: 'the quick brown fox' });
  });
});

describe('streaming', () => {
  test('one token (a word and a space) per content chunk; usage in a last choices: [] chunk only with include_usage', async () => {
    const server = await model({ answerTokens: 5, interTokenMs: 1 });
    const withUsage = await stream(server, { messages, stream_options: { include_usage: true } });
    const data = withUsage.map((e) => e.data);
    expect(data.at(-1)).toBe('[DONE]');
    const contents = data.filter((d) => d !== '[DONE]' && d.choices.length && d.choices[0].delta.content !== undefined).map((d) => d.choices[0].delta.content);
    expect(contents).toEqual(['the ', 'quick ', 'brown ', 'fox ', 'jumps']);
    expect(data[0].choices[0].delta.role).toBe('assistant');
    expect(data.at(-3).choices[0]).toEqual({ index: 0, delta: {}, finish_reason: 'stop' });
    expect(data.at(-2)).toMatchObject({ object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: PROMPT_WORDS, completion_tokens: 5, total_tokens: PROMPT_WORDS + 5 } });

    for (const body of [{ messages }, { messages, stream_options: { include_usage: false } }]) {
      const plain = (await stream(server, body)).map((e) => e.data);
      expect(plain.filter((d) => d !== '[DONE]' && (d.usage !== undefined || d.choices.length === 0))).toEqual([]);
      expect(plain.at(-2).choices[0].finish_reason).toBe('stop');
    }
  });

  test('a streamed answer cut by max_tokens ends with finish_reason "length"', async () => {
    const server = await model({ answerTokens: 10, tokensPerSecond: 0 });
    const data = (await stream(server, { messages, max_tokens: 3, stream_options: { include_usage: true } })).map((e) => e.data);
    expect(data.at(-3).choices[0].finish_reason).toBe('length');
    expect(data.at(-2).usage.completion_tokens).toBe(3);
  });

  test('inter-token gaps are about interTokenMs, client-side and in vllm:inter_token_latency_seconds; TTFT as before', async () => {
    const server = await model({ answerTokens: 11, interTokenMs: 20, ttftMs: 40 });
    const events = await stream(server, { messages });
    const content = events.filter((e) => e.data !== '[DONE]' && e.data.choices[0]?.delta.content !== undefined);
    expect(content).toHaveLength(11);
    const gaps = content.slice(1).map((e, i) => e.at - content[i]!.at);
    const sorted = [...gaps].sort((x, y) => x - y);
    const median = sorted[5]!;
    expect(median).toBeGreaterThan(14);
    expect(median).toBeLessThan(45);
    expect(content[0]!.at).toBeGreaterThan(30);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricValue(metrics, 'vllm:inter_token_latency_seconds_count')).toBe(10);
    const meanGapS = metricValue(metrics, 'vllm:inter_token_latency_seconds_sum') / 10;
    expect(meanGapS).toBeGreaterThan(0.014);
    expect(meanGapS).toBeLessThan(0.06);
    expect(metricValue(metrics, 'vllm:time_to_first_token_seconds_count')).toBe(1);
    const ttftS = metricValue(metrics, 'vllm:time_to_first_token_seconds_sum');
    expect(ttftS).toBeGreaterThan(0.035);
    expect(ttftS).toBeLessThan(0.2);
    expect(metricValue(metrics, 'vllm:generation_tokens_total')).toBe(11);
    expect(metricValue(metrics, 'vllm:prompt_tokens_total')).toBe(PROMPT_WORDS);
    expect(metrics).toMatch(/vllm:inter_token_latency_seconds_bucket\{le="0.001",model_name="m"\} 0/);
  });

  test('tokensPerSecond still sets the gap when interTokenMs is not given', async () => {
    const server = await model({ answerTokens: 6, tokensPerSecond: 25 });
    const t0 = performance.now();
    await stream(server, { messages });
    expect(performance.now() - t0).toBeGreaterThan(5 * 40 * 0.75);
  });
});

describe('flags and env', () => {
  test('the new knobs as flags and as MODEL_* variables; rates are probabilities', () => {
    expect(optionsFromArgs(['--inter-token-ms', '7', '--answer-tokens', '64', '--truncation-rate', '0.1', '--invalid-json-rate', '0.2'], {})).toMatchObject({
      interTokenMs: 7,
      answerTokens: 64,
      truncationRate: 0.1,
      invalidJsonRate: 0.2,
    });
    expect(optionsFromArgs([], { MODEL_INTER_TOKEN_MS: '3', MODEL_ANSWER_TOKENS: '9', MODEL_TRUNCATION_RATE: '0.5', MODEL_INVALID_JSON_RATE: '1' })).toMatchObject({
      interTokenMs: 3,
      answerTokens: 9,
      truncationRate: 0.5,
      invalidJsonRate: 1,
    });
    expect(() => optionsFromArgs(['--truncation-rate', '1.5'], {})).toThrow(/probability/);
    expect(() => optionsFromArgs(['--invalid-json-rate=-1'], {})).toThrow(/non-negative/);
    // The old ones still work.
    expect(optionsFromArgs(['--tokens-per-second', '50', '--max-tokens', '8'], {})).toMatchObject({ tokensPerSecond: 50, maxTokens: 8 });
  });
});
