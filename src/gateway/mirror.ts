/**
 * Mirroring (a shadow step): a copy of some of the requests one version (`from`) serves goes to
 * another (`to`), whose answer nobody sees; each pair of answers is compared into the target's
 * cumulative ShadowSample, and a sample of them may be judged by an evaluator service.
 *
 * The live path never waits for a mirror: the copy is sent once the live exchange has ended (so
 * it also never competes with it for the client's bytes), from a bounded number of slots; with
 * every slot taken (the candidate is slow) a copy is dropped and counted, never queued. Mirrored
 * requests are kept out of the candidate's live VersionStats (its sample-ratio and error figures
 * are of the traffic the weights gave it); they are only in the ShadowSample.
 */
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { PAIR_MARGIN, type PairedMetric, type ShadowSample } from '../analysis/metrics';
import { LlmResponseMeter, llmOutcome, type LlmKind, type LlmOutcome, type LlmRequest } from './llm';
import type { CompiledVersion } from './table';

/** A route's mirror, compiled (src/gateway/table.ts). */
export interface CompiledMirror {
  fromIndex: number;
  to: CompiledVersion;
  /** Percent of `from`'s requests copied: each request is drawn at random (not by its key). */
  percent: number;
  evaluator?: { url: string; sample: number };
  /** The target's cumulative pairs (GatewayMetrics.shadow). */
  shadow: ShadowSample;
}

/** One side of a pair: how its answer went. */
export interface PairSide {
  status: number;
  /** A 5xx, a connection failure or a timeout. */
  error: boolean;
  latencyMs: number;
  /** What its LLM answer held, when the request was an LLM request and the answer complete. */
  llm?: LlmOutcome;
}

/** A live exchange that ended, to be mirrored. */
export interface MirrorJob {
  mirror: CompiledMirror;
  method: string;
  /** The path after the target ('/...', with query): the `to` version's base path is put in front. */
  rest: string;
  /** The headers forwarded to the live version (hop-by-hop ones already removed). */
  headers: string[];
  body: Buffer | null;
  llmKind?: LlmKind;
  /** The request as an LLM request, when its body parsed (for the evaluator's prompt). */
  llmRequest?: LlmRequest;
  baseline: PairSide;
}

export interface MirrorOptions {
  /** Most mirrored requests in flight (all targets); beyond, a copy is dropped. */
  maxInFlight: number;
  /** Longest wait for the mirror's response headers, and longest silence in its body. */
  upstreamTimeoutMs: number;
  /** Most evaluator calls in flight; beyond, a pair is not evaluated. */
  evaluatorMaxInFlight: number;
  /** Longest an evaluator call may take, whole. */
  evaluatorTimeoutMs: number;
  onError?: (what: string, err: Error) => void;
}

/** The verdict an evaluator's answer gives: `{verdict}`, or the sign of `{score}`; undefined when it is neither. */
export function verdictOf(answer: unknown): 'better' | 'same' | 'worse' | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const { verdict, score } = answer as { verdict?: unknown; score?: unknown };
  if (verdict === 'better' || verdict === 'same' || verdict === 'worse') return verdict;
  if (typeof score === 'number' && Number.isFinite(score)) return score > 0 ? 'better' : score < 0 ? 'worse' : 'same';
  return undefined;
}

function bump(counts: Partial<Record<PairedMetric, number>>, metric: PairedMetric): void {
  counts[metric] = (counts[metric] ?? 0) + 1;
}

/** Larger is worse (times, tokens): more than PAIR_MARGIN× either way counts, anything closer is a tie. */
function compareBy(shadow: ShadowSample, metric: PairedMetric, baseline: number, candidate: number): void {
  if (candidate > baseline * PAIR_MARGIN) bump(shadow.worse, metric);
  else if (baseline > candidate * PAIR_MARGIN) bump(shadow.better, metric);
}

/**
 * Adds a completed pair to `shadow`. Errors: one side failed (both failed: neither); the other
 * metrics only when neither failed — latency, time to first token (both LLM streams or answers),
 * output tokens (more is worse: cost and verbosity), invalidOutput (structured output that does
 * not parse on one side only).
 */
export function comparePair(shadow: ShadowSample, baseline: PairSide, candidate: PairSide): void {
  shadow.pairs++;
  if (baseline.error || candidate.error) {
    if (baseline.error !== candidate.error) bump(candidate.error ? shadow.worse : shadow.better, 'errors');
    return;
  }
  compareBy(shadow, 'latency', baseline.latencyMs, candidate.latencyMs);
  const b = baseline.llm;
  const c = candidate.llm;
  if (!b || !c) return;
  const bTtft = b.answer.timeToFirstTokenMs;
  const cTtft = c.answer.timeToFirstTokenMs;
  if (bTtft !== undefined && cTtft !== undefined) compareBy(shadow, 'timeToFirstToken', bTtft, cTtft);
  compareBy(shadow, 'outputTokens', b.outputTokens, c.outputTokens);
  if (b.structured && b.invalidStructured !== c.invalidStructured) bump(c.invalidStructured ? shadow.worse : shadow.better, 'invalidOutput');
}

const isOk = (side: PairSide) => side.status >= 200 && side.status < 300;

export class Mirrorer {
  private inFlight = 0;
  private evaluating = 0;
  /** The evaluator's connections, apart from the upstreams' pools; closed with the gateway. */
  private readonly agent = new Agent({ connections: 16 });

  constructor(private readonly options: MirrorOptions) {}

  /** Sends the job's copy now, or drops it (counted) when every slot is taken. */
  submit(job: MirrorJob): void {
    const { mirror } = job;
    const upstream = mirror.to.upstream;
    if (this.inFlight >= this.options.maxInFlight || upstream.active >= upstream.maxActive) {
      mirror.shadow.dropped++;
      return;
    }
    this.inFlight++;
    upstream.active++;
    mirror.shadow.mirrored++;
    this.send(job)
      .then((candidate) => this.paired(job, candidate))
      .catch((err: unknown) => this.options.onError?.('mirror', err as Error))
      .finally(() => {
        this.inFlight--;
        upstream.active--;
      });
  }

  /** The mirrored request, its whole answer read (and metered like the live one). */
  private async send(job: MirrorJob): Promise<PairSide> {
    const to = job.mirror.to;
    const startedAt = performance.now();
    try {
      const response = await to.upstream.pool.request({
        path: to.basePath + job.rest,
        method: job.method,
        headers: job.headers,
        body: job.body,
        headersTimeout: this.options.upstreamTimeoutMs,
        bodyTimeout: this.options.upstreamTimeoutMs,
      });
      const status = response.statusCode;
      const contentType = response.headers['content-type'];
      const meter =
        job.llmKind && status >= 200 && status < 300
          ? new LlmResponseMeter(job.llmKind, String(contentType ?? '').includes('text/event-stream'), startedAt)
          : undefined;
      for await (const chunk of response.body) meter?.push(chunk as Buffer, performance.now());
      const endedAt = performance.now();
      const side: PairSide = { status, error: status >= 500, latencyMs: endedAt - startedAt };
      const answer = meter?.end(endedAt);
      if (answer && job.llmRequest) side.llm = llmOutcome(job.llmRequest, answer);
      return side;
    } catch {
      // A connection failure, a timeout or a broken body: the candidate failed this one.
      return { status: 502, error: true, latencyMs: performance.now() - startedAt };
    }
  }

  private paired(job: MirrorJob, candidate: PairSide): void {
    const { mirror, baseline } = job;
    comparePair(mirror.shadow, baseline, candidate);
    const evaluator = mirror.evaluator;
    const prompt = job.llmRequest?.body;
    const baselineText = baseline.llm?.answer.content;
    const candidateText = candidate.llm?.answer.content;
    if (!evaluator || prompt === undefined || baselineText === undefined || candidateText === undefined) return;
    if (!isOk(baseline) || !isOk(candidate) || Math.random() >= evaluator.sample) return;
    if (this.evaluating >= this.options.evaluatorMaxInFlight) return; // not sampled: the evaluator is busy
    this.evaluating++;
    mirror.shadow.evaluated++;
    this.evaluate(evaluator.url, { prompt, baseline: baselineText, candidate: candidateText })
      .then((verdict) => {
        if (verdict === 'worse') bump(mirror.shadow.worse, 'verdict');
        else if (verdict === 'better') bump(mirror.shadow.better, 'verdict');
      })
      .catch((err: unknown) => {
        mirror.shadow.evaluatorErrors++;
        this.options.onError?.('evaluator', err as Error);
      })
      .finally(() => this.evaluating--);
  }

  private async evaluate(url: string, pair: { prompt: unknown; baseline: string; candidate: string }): Promise<'better' | 'same' | 'worse'> {
    const response = await request(url, {
      dispatcher: this.agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(pair),
      signal: AbortSignal.timeout(this.options.evaluatorTimeoutMs),
    });
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`the evaluator answered ${response.statusCode}: ${text.slice(0, 200)}`);
    const verdict = verdictOf(JSON.parse(text));
    if (!verdict) throw new Error(`the evaluator answered neither {verdict: "better"|"same"|"worse"} nor {score: number}: ${text.slice(0, 200)}`);
    return verdict;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
