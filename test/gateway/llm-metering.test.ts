/**
 * LLM metering through the gateway over real HTTP: a tiny OpenAI-compatible upstream streams SSE
 * with controlled delays; /admin/metrics and /metrics carry time to first token, inter-token
 * latency and token counts. Other traffic is not metered.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { LATENCY_BUCKETS_MS, histogramQuantile, histogramTotal, type VersionMetrics } from '../../src/analysis/metrics';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { adminClient, seriesValue } from './helpers';
import { PROMPT_TOKENS, chatBody, llmServer, type LlmServer } from './llm-helpers';

const TTFT_MS = 150;
const GAP_MS = 60;

let dataDir: string;
let gateway: Gateway;
let model: LlmServer;
let admin: ReturnType<typeof adminClient>;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-llm-'));
  model = await llmServer({ version: 'v1', ttftMs: TTFT_MS, gapMs: GAP_MS });
  gateway = await startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) });
  admin = adminClient(gateway.url);
});

afterAll(async () => {
  await gateway?.close(100);
  await model?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function route(target: string): Promise<void> {
  expect((await admin.put(target, { versions: [{ name: 'v1', url: model.url, weight: 100 }] })).status).toBe(200);
}

async function metricsOf(target: string, version = 'v1'): Promise<VersionMetrics> {
  const res = await admin.get(`/admin/metrics/${target}`);
  expect(res.status).toBe(200);
  return res.body.versions[version];
}

async function post(pathname: string, body: string | Buffer) {
  const started = performance.now();
  const res = await request(`${gateway.url}${pathname}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  let firstChunkMs = -1;
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) {
    if (firstChunkMs < 0 && String(chunk).includes('"content"')) firstChunkMs = performance.now() - started;
    chunks.push(chunk as Buffer);
  }
  return { status: res.statusCode, text: Buffer.concat(chunks).toString('utf8'), firstChunkMs, totalMs: performance.now() - started };
}

/** The smallest and largest bucket edges holding observations. */
function range(h: { boundsMs: number[]; counts: number[] }): [number, number] {
  const used = h.counts.map((n, i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
  return [h.boundsMs[used[0]! - 1] ?? 0, h.boundsMs[used.at(-1)!] ?? Infinity];
}

it('streams: time to first token and inter-token gaps in histograms, tokens from the stream usage; chunks pass through as they come', async () => {
  await route('stream');
  const results = await Promise.all([1, 2, 3].map(() => post('/stream/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }))));
  for (const r of results) {
    expect(r.status).toBe(200);
    expect(r.text).toContain('data: [DONE]');
    // The first content chunk reached the client long before the stream ended: nothing is held back.
    expect(r.firstChunkMs).toBeLessThan(r.totalMs - 2 * GAP_MS);
  }
  const m = await metricsOf('stream');
  expect(m.timeToFirstToken!.boundsMs).toEqual(LATENCY_BUCKETS_MS);
  expect(histogramTotal(m.timeToFirstToken!)).toBe(3);
  const [ttftLow, ttftHigh] = range(m.timeToFirstToken!);
  expect(ttftLow).toBeGreaterThanOrEqual(TTFT_MS * 0.8);
  expect(ttftHigh).toBeLessThanOrEqual(TTFT_MS * 2.5);
  // 4 content chunks each: 3 gaps per stream.
  expect(histogramTotal(m.interTokenLatency!)).toBe(9);
  const p50 = histogramQuantile(m.interTokenLatency!, 0.5)!;
  expect(p50).toBeGreaterThan(GAP_MS * 0.7);
  expect(p50).toBeLessThan(GAP_MS * 2);
  expect(m.llm).toMatchObject({
    requests: 3,
    inputTokens: { sum: 3 * PROMPT_TOKENS, sumSquares: 3 * PROMPT_TOKENS ** 2 },
    outputTokens: { sum: 12, sumSquares: 48 },
    inputOutputSum: 3 * PROMPT_TOKENS * 4,
    truncated: 0,
    structured: 0,
    invalidStructured: 0,
  });
  // First to last content chunk: 3 gaps.
  expect(m.llm!.generationSeconds).toBeGreaterThan((3 * 3 * GAP_MS * 0.8) / 1000);

  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  expect(seriesValue(text, 'gateway_time_to_first_token_seconds_count{target="stream",version="v1"}')).toBe(3);
  expect(seriesValue(text, 'gateway_inter_token_latency_seconds_count{target="stream",version="v1"}')).toBe(9);
  expect(text).toContain('gateway_time_to_first_token_seconds_bucket{le="0.0175",target="stream",version="v1"} 0');
  expect(seriesValue(text, 'gateway_llm_input_tokens_total{target="stream",version="v1"}')).toBe(3 * PROMPT_TOKENS);
  expect(seriesValue(text, 'gateway_llm_output_tokens_total{target="stream",version="v1"}')).toBe(12);
  expect(seriesValue(text, 'gateway_llm_truncated_total{target="stream",version="v1"}')).toBe(0);
  expect(seriesValue(text, 'gateway_llm_structured_total{target="stream",version="v1"}')).toBe(0);
  expect(seriesValue(text, 'gateway_llm_invalid_structured_total{target="stream",version="v1"}')).toBe(0);
  // The existing series are still there.
  expect(seriesValue(text, 'gateway_requests_total{target="stream",version="v1",code="2xx"}')).toBe(3);
});

it('a stream without usage: tokens are counted as words (prompt words in, content words out)', async () => {
  await route('nousage');
  await post('/nousage/v1/chat/completions', chatBody({ stream: true }, 'one two three'));
  const m = await metricsOf('nousage');
  expect(m.llm).toMatchObject({ requests: 1, inputTokens: { sum: 3 }, outputTokens: { sum: 4 } });
});

it('JSON answers: first token when the body arrived, usage, truncation; structured output that does not parse', async () => {
  const truncating = await llmServer({ version: 'v2', ttftMs: 40, gapMs: 0, pieces: ['{"answer": ', '"cut'], finishReason: 'length' });
  try {
    expect((await admin.put('json', { versions: [{ name: 'v2', url: truncating.url, weight: 100 }] })).status).toBe(200);
    const structured = chatBody({ response_format: { type: 'json_object' } });
    const [a, b] = await Promise.all([post('/json/v1/chat/completions', structured), post('/json/v1/chat/completions', chatBody())]);
    expect(JSON.parse(a.text).choices[0].message.content).toBe('{"answer": "cut');
    expect(b.status).toBe(200);
    const m = await metricsOf('json', 'v2');
    expect(histogramTotal(m.timeToFirstToken!)).toBe(2);
    expect(range(m.timeToFirstToken!)[0]).toBeGreaterThanOrEqual(30);
    expect(histogramTotal(m.interTokenLatency!)).toBe(0);
    expect(m.llm).toMatchObject({ requests: 2, inputTokens: { sum: 2 * PROMPT_TOKENS }, outputTokens: { sum: 4 }, generationSeconds: 0, truncated: 2, structured: 1, invalidStructured: 1 });
  } finally {
    await truncating.close();
  }
});

it('a request body larger than the gateway holds back (streamed upstream) is still metered, and arrives whole', async () => {
  await route('large');
  const words = Array.from({ length: 30_000 }, (_, i) => `w${i}`).join(' '); // ~200 KiB
  const body = chatBody({ stream: true }, words);
  const r = await post('/large/v1/chat/completions', body);
  expect(r.status).toBe(200);
  expect(model.received.at(-1)!.body).toBe(body);
  const m = await metricsOf('large');
  expect(m.llm).toMatchObject({ requests: 1, inputTokens: { sum: 30_000 } });
});

it('other traffic is passed through and not metered: other paths, GETs, bodies that are not JSON', async () => {
  await route('plain');
  const embed = JSON.stringify({ input: 'hello world', stream: true });
  const r = await post('/plain/v1/embeddings', embed);
  expect(JSON.parse(r.text)).toMatchObject({ version: 'v1', body: embed });
  const notJson = await post('/plain/v1/chat/completions', 'data: not json');
  expect(notJson.status).toBe(200);
  expect(model.received.at(-1)!.body).toBe('data: not json');
  await fetch(`${gateway.url}/plain/v1/chat/completions`);
  const m = await metricsOf('plain');
  expect(m.requests).toBe(3);
  expect(m.llm!.requests).toBe(0);
  expect(histogramTotal(m.timeToFirstToken!)).toBe(0);
});
