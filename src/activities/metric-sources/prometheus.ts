/**
 * Prometheus as a MetricSource: `metrics: { kind: "prometheus", url, preset?, queries?,
 * versionLabels?, targetLabel? }`. Each figure of a version (requests, errors, the latency, TTFB, TTFT and
 * inter-token latency histograms, resource use) is one PromQL template, evaluated as an instant query
 * (`/api/v1/query`) at the end of the check's window; `$interval` is the window's length, so a
 * reading is the figures of exactly that window (`{ kind: "interval" }`: PromQL's `increase`
 * does the counting and handles counter resets; the workflow keeps no counters).
 *
 * Placeholders: `$target` (the spec's target, or `targetLabel`), `$version` (the version's name,
 * or its `versionLabels` entry) and `$interval` (the window, e.g. `37s`). Values substituted are
 * label values without quotes or backslashes (validated), so they are safe inside `"..."`.
 *
 * A preset gives every template (`gateway`, `vllm`, `istio`: PROMETHEUS_PRESETS); `queries`
 * overrides single ones; without a preset, requests, errors and latency must be given.
 *
 * What a query that answers no series means:
 *  - requests: the version is not seen (not scraped, wrong labels, or no two samples in the
 *    window yet): the read throws, and the check is inconclusive (the step holds), never a pass;
 *  - errors: no error series (e.g. no 5xx yet) is 0 errors. The rule holds because requests are
 *    read first and must have answered: "nothing failed" is only said of a version that is seen;
 *  - latency: an empty histogram if the version served no requests in the window, else the read
 *    throws (requests without latencies cannot be judged);
 *  - timeToFirstByte, timeToFirstToken, interTokenLatency and the resource figures: unknown (left
 *    out of the reading).
 * Counts are rounded to integers (`increase` extrapolates to the window's edges, so it answers
 * fractions) and never negative; errors are at most requests. A template answering several
 * series is summed (histograms: per `le`), except gpuUtilization and kvCacheUsage: averaged.
 */
import { ApplicationFailure } from '@temporalio/common';
import { request } from 'undici';
import { z } from 'zod';
import { emptyHistogram, emptyVersionMetrics, histogramTotal, type Histogram, type VersionMetrics } from '../../analysis/metrics';
import { VERSION_PATTERN, VERSION_RULE } from '../../spec/patterns';
import { defineAdapter } from '../registry';
import type { MetricQuery, MetricSource, ModelVersion } from '../types';

/** The figures a template can give, as VersionMetrics names them. */
export const PROMETHEUS_FIGURES = [
  'requests',
  'errors',
  'latency',
  'timeToFirstByte',
  'timeToFirstToken',
  'interTokenLatency',
  'cpuSeconds',
  'memoryBytes',
  'gpuUtilization',
  'kvCacheUsage',
] as const;
export type PrometheusFigure = (typeof PROMETHEUS_FIGURES)[number];
type HistogramFigure = 'latency' | 'timeToFirstByte' | 'timeToFirstToken' | 'interTokenLatency';
type ScalarFigure = Exclude<PrometheusFigure, HistogramFigure>;

/** Figures every rollout needs: without a preset, their templates must be given. */
export const REQUIRED_FIGURES: readonly PrometheusFigure[] = ['requests', 'errors', 'latency'];
const HISTOGRAM_FIGURES: readonly HistogramFigure[] = ['latency', 'timeToFirstByte', 'timeToFirstToken', 'interTokenLatency'];
/** Histogram figures that are simply unknown when their query answers no series. */
const OPTIONAL_HISTOGRAM_FIGURES = ['timeToFirstByte', 'timeToFirstToken', 'interTokenLatency'] as const;
const AVERAGED_FIGURES: readonly PrometheusFigure[] = ['gpuUtilization', 'kvCacheUsage'];

export const PLACEHOLDERS = ['target', 'version', 'interval'] as const;

/** The unit of a histogram's `le` labels: Prometheus' convention is seconds; Istio's are milliseconds. */
export type LeUnit = 'seconds' | 'milliseconds';

/** A histogram figure's template: PromQL answering cumulative `_bucket` series by `le`. */
export interface HistogramTemplate {
  query: string;
  le: LeUnit;
}

export const PRESET_NAMES = ['gateway', 'vllm', 'istio'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

type Preset = { [F in ScalarFigure]?: string } & { [F in HistogramFigure]?: HistogramTemplate };

const seconds = (query: string): HistogramTemplate => ({ query, le: 'seconds' });

/**
 * Istio's and cAdvisor's figures of a version's pods: cAdvisor and DCGM series carry `namespace`
 * and `pod`, and kube-state-metrics' `kube_pod_labels` says which pods are the target's version
 * (the pods' `app` and `version` labels, Istio's own convention; kube-state-metrics must export
 * them: `--metric-labels-allowlist=pods=[app,version]`).
 */
const OF_VERSION_PODS = 'on (namespace, pod) group_left () max by (namespace, pod) (kube_pod_labels{label_app="$target",label_version="$version"})';
const CONTAINERS = 'container!="",container!="POD"';

/** The templates of each preset (docs: README "Prometheus metric source"). */
export const PROMETHEUS_PRESETS: Record<PresetName, Preset> = {
  /**
   * The embedded gateway's own `GET /metrics` (src/gateway/metrics.ts): what it proxied, by target
   * and version; so it sees only traffic the gateway routes (`routing.kind` "gateway").
   */
  gateway: {
    requests: 'sum(increase(gateway_requests_total{target="$target",version="$version"}[$interval]))',
    errors: 'sum(increase(gateway_request_errors_total{target="$target",version="$version"}[$interval]))',
    latency: seconds('sum by (le) (increase(gateway_request_duration_seconds_bucket{target="$target",version="$version"}[$interval]))'),
    timeToFirstByte: seconds('sum by (le) (increase(gateway_time_to_first_byte_seconds_bucket{target="$target",version="$version"}[$interval]))'),
    timeToFirstToken: seconds('sum by (le) (increase(gateway_time_to_first_token_seconds_bucket{target="$target",version="$version"}[$interval]))'),
    interTokenLatency: seconds('sum by (le) (increase(gateway_inter_token_latency_seconds_bucket{target="$target",version="$version"}[$interval]))'),
  },
  /**
   * vLLM's own metrics, by `model_name` (the served model name: map versions to it with
   * `versionLabels`). Requests are the finished requests, whatever their `finished_reason`;
   * errors are those finished with `error` (vLLM's internal errors, always answered 500). Client
   * aborts are not errors. vLLM before `error` existed reports none: override `errors`, e.g. with
   * `finished_reason=~"error|abort"`. Requests refused before the engine (400s, a dead server)
   * are not in these metrics at all; a router's metrics see them. CPU and memory: the server's
   * `process_*` series, attributed by a `model_name` label (a scrape target label) — vLLM's own
   * have none, so without one these figures are unknown.
   */
  vllm: {
    requests: 'sum(increase(vllm:request_success_total{model_name="$version"}[$interval]))',
    errors: 'sum(increase(vllm:request_success_total{model_name="$version",finished_reason="error"}[$interval]))',
    latency: seconds('sum by (le) (increase(vllm:e2e_request_latency_seconds_bucket{model_name="$version"}[$interval]))'),
    timeToFirstToken: seconds('sum by (le) (increase(vllm:time_to_first_token_seconds_bucket{model_name="$version"}[$interval]))'),
    // Kept: vLLM measures no first byte, and its first token is the nearest figure, so rollouts
    // gating on timeToFirstByte with this preset keep judging what they judged before.
    timeToFirstByte: seconds('sum by (le) (increase(vllm:time_to_first_token_seconds_bucket{model_name="$version"}[$interval]))'),
    interTokenLatency: seconds('sum by (le) (increase(vllm:inter_token_latency_seconds_bucket{model_name="$version"}[$interval]))'),
    cpuSeconds: 'sum(increase(process_cpu_seconds_total{model_name="$version"}[$interval]))',
    memoryBytes: 'sum(max_over_time(process_resident_memory_bytes{model_name="$version"}[$interval]))',
    kvCacheUsage: 'avg(avg_over_time({__name__=~"vllm:(kv|gpu)_cache_usage_perc",model_name="$version"}[$interval]))',
  },
  /**
   * Istio's standard metrics as the destination's sidecar reports them (`reporter="destination"`,
   * so nothing is counted twice): `$target` is the canonical service (`destination_canonical_service`:
   * the pods' `service.istio.io/canonical-name`, `app.kubernetes.io/name` or `app` label, the same
   * for every version — a per-version Service would split `destination_service_name`), the
   * version its pods' `version` label (`destination_version`); errors are 5xx responses. Resource
   * figures from cAdvisor and DCGM, by the version's pods (OF_VERSION_PODS).
   */
  istio: {
    requests: 'sum(increase(istio_requests_total{reporter="destination",destination_canonical_service="$target",destination_version="$version"}[$interval]))',
    errors:
      'sum(increase(istio_requests_total{reporter="destination",destination_canonical_service="$target",destination_version="$version",response_code=~"5.."}[$interval]))',
    latency: {
      query: 'sum by (le) (increase(istio_request_duration_milliseconds_bucket{reporter="destination",destination_canonical_service="$target",destination_version="$version"}[$interval]))',
      le: 'milliseconds',
    },
    cpuSeconds: `sum(increase(container_cpu_usage_seconds_total{${CONTAINERS}}[$interval]) * ${OF_VERSION_PODS})`,
    memoryBytes: `sum(max_over_time(container_memory_working_set_bytes{${CONTAINERS}}[$interval]) * ${OF_VERSION_PODS})`,
    gpuUtilization: `avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[$interval]) * ${OF_VERSION_PODS}) / 100`,
  },
};

// ---- Validation (at start: the options schema) ----

/**
 * What is wrong with a template, each as a phrase completing "metrics.queries.<figure> ...";
 * none when it is well-formed. Not a PromQL parser: it catches what a typo makes (an unknown
 * `$placeholder`, unbalanced brackets or quotes, nothing at all); Prometheus judges the rest at
 * the first read, and its answer is in the check's reasons.
 */
export function templateProblems(template: string): string[] {
  if (template.trim() === '') return ['is empty'];
  const problems: string[] = [];
  const used = new Set<string>();
  for (const match of template.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = match[1]!;
    used.add(name);
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      problems.push(`uses an unknown placeholder $${name} (known: ${PLACEHOLDERS.map((p) => `$${p}`).join(', ')})`);
    }
  }
  if (!used.has('version')) problems.push('does not use $version: both versions would read the same series');
  const structure = structureProblem(template);
  if (structure) problems.push(structure);
  return problems;
}

const CLOSING: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

/** The first unbalanced bracket or quote, outside strings and `#` comments, as PromQL reads them. */
function structureProblem(text: string): string | undefined {
  const open: Array<{ char: string; at: number }> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === '`') {
      const start = i;
      for (i++; i < text.length && text[i] !== c; i++) {
        if (c !== '`' && text[i] === '\\') i++;
        else if (c !== '`' && text[i] === '\n') break;
      }
      if (i >= text.length || text[i] !== c) return `has an unclosed quote ${c} (character ${start + 1})`;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '(' || c === '[' || c === '{') {
      open.push({ char: c, at: i });
    } else if (c in CLOSING) {
      const last = open.pop();
      if (!last) return `has an unbalanced "${c}" (character ${i + 1}) that closes nothing`;
      if (last.char !== CLOSING[c]) return `has "${c}" (character ${i + 1}) where "${last.char}" (character ${last.at + 1}) is still open`;
    }
  }
  const unclosed = open.pop();
  return unclosed ? `has an unclosed "${unclosed.char}" (character ${unclosed.at + 1})` : undefined;
}

const templateSchema = (figure: PrometheusFigure) =>
  z.string({ error: `metrics.queries.${figure} must be a PromQL template string` }).superRefine((text, ctx) => {
    for (const problem of templateProblems(text)) ctx.addIssue({ code: 'custom', message: `metrics.queries.${figure} ${problem}` });
  });

const histogramTemplateSchema = (figure: HistogramFigure) =>
  z.union(
    [
      templateSchema(figure),
      z.strictObject({
        query: templateSchema(figure),
        le: z.enum(['seconds', 'milliseconds'], { error: `metrics.queries.${figure}.le must be "seconds" or "milliseconds" (the unit of the histogram's le labels)` }).optional(),
      }),
    ],
    {
      error: (issue) =>
        issue.code === 'invalid_union'
          ? `metrics.queries.${figure} must be a PromQL template string, or { "query": "<template>", "le": "seconds" | "milliseconds" }`
          : undefined,
    },
  );

/** A label value substituted into `"..."`: nothing that could end the string or escape from it. */
const labelValueSchema = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(256, `${what} must be at most 256 characters`)
    .regex(/^[^"'`\\\n\r]*$/, `${what} must not contain quotes, backslashes or line breaks`);

function prometheusUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'metrics.url must be an absolute http(s) URL, e.g. "http://127.0.0.1:9090"';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return 'metrics.url must be an absolute http(s) URL, e.g. "http://127.0.0.1:9090"';
  if (url.username || url.password) return 'metrics.url must not carry credentials';
  if (url.search || url.hash || text.includes('?') || text.includes('#')) return 'metrics.url must not have a query or fragment (it is the base URL, /api/v1/query is appended)';
  return undefined;
}

const queriesSchema = z.strictObject(
  {
    requests: templateSchema('requests').optional(),
    errors: templateSchema('errors').optional(),
    latency: histogramTemplateSchema('latency').optional(),
    timeToFirstByte: histogramTemplateSchema('timeToFirstByte').optional(),
    timeToFirstToken: histogramTemplateSchema('timeToFirstToken').optional(),
    interTokenLatency: histogramTemplateSchema('interTokenLatency').optional(),
    cpuSeconds: templateSchema('cpuSeconds').optional(),
    memoryBytes: templateSchema('memoryBytes').optional(),
    gpuUtilization: templateSchema('gpuUtilization').optional(),
    kvCacheUsage: templateSchema('kvCacheUsage').optional(),
  },
  { error: `metrics.queries must be an object of PromQL templates by figure (${PROMETHEUS_FIGURES.join(', ')})` },
);

export const prometheusOptions = z
  .strictObject({
    kind: z.literal('prometheus'),
    /** Prometheus' base URL (`/api/v1/query` is appended), e.g. http://127.0.0.1:9090. */
    url: z.string({ error: 'metrics.url must be a string' }).superRefine((text, ctx) => {
      const problem = prometheusUrlProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    /** Templates for the metrics of the embedded gateway, vLLM or Istio; `queries` overrides single ones. */
    preset: z.enum(PRESET_NAMES, { error: `metrics.preset must be one of ${PRESET_NAMES.map((p) => `"${p}"`).join(', ')}` }).optional(),
    queries: queriesSchema.optional(),
    /** The label value of a version whose series are labelled otherwise than its name (`$version`). */
    versionLabels: z
      .record(z.string().regex(VERSION_PATTERN, `metrics.versionLabels keys must be version names (${VERSION_RULE})`), labelValueSchema('a metrics.versionLabels value'), {
        error: 'metrics.versionLabels must be an object: { "<version>": "<label value>" }',
      })
      .optional(),
    /** The label value of the target (`$target`) when its series name it otherwise (e.g. an Istio Service). */
    targetLabel: labelValueSchema('metrics.targetLabel').optional(),
  })
  .superRefine((options, ctx) => {
    if (options.preset !== undefined) return;
    for (const figure of REQUIRED_FIGURES) {
      if (options.queries?.[figure] === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['queries', figure],
          message: `metrics.queries.${figure} is required without metrics.preset (one of ${PRESET_NAMES.map((p) => `"${p}"`).join(', ')})`,
        });
      }
    }
  });

export type PrometheusOptions = z.output<typeof prometheusOptions>;

/** `metrics: { kind: "prometheus", ... }`: sees whatever Prometheus scrapes, whichever router splits the traffic. */
export const prometheusMetrics = defineAdapter({
  kind: 'prometheus',
  options: prometheusOptions,
  create: (options): MetricSource => prometheusMetricSource(options),
});

interface ResolvedTemplate {
  figure: PrometheusFigure;
  query: string;
  le?: LeUnit;
}

/** The templates a source runs: the preset's, with `queries` over them (a string keeps the preset's `le` unit). */
export function resolveTemplates(options: Pick<PrometheusOptions, 'preset' | 'queries'>): ResolvedTemplate[] {
  const preset: Preset = options.preset ? PROMETHEUS_PRESETS[options.preset] : {};
  const resolved: ResolvedTemplate[] = [];
  for (const figure of PROMETHEUS_FIGURES) {
    const given = options.queries?.[figure];
    const base = preset[figure];
    if ((HISTOGRAM_FIGURES as readonly string[]).includes(figure)) {
      const fromPreset = base as HistogramTemplate | undefined;
      const override = given as string | { query: string; le?: LeUnit } | undefined;
      const query = typeof override === 'string' ? override : (override?.query ?? fromPreset?.query);
      if (query === undefined) continue;
      const le = (typeof override === 'object' ? override.le : undefined) ?? fromPreset?.le ?? 'seconds';
      resolved.push({ figure, query, le });
    } else {
      const query = (given as string | undefined) ?? (base as string | undefined);
      if (query !== undefined) resolved.push({ figure, query });
    }
  }
  return resolved;
}

// ---- Reading ----

/** An instant vector's samples, as `/api/v1/query` answers them. */
export interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

interface QueryAnswer {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

export interface PrometheusSourceOptions extends Pick<PrometheusOptions, 'url' | 'preset' | 'queries' | 'versionLabels' | 'targetLabel'> {
  /** Longest wait for one query's answer (ms); default 5 s. */
  timeoutMs?: number;
}

/** `$interval` for a window: whole seconds when it is (`37s`), else milliseconds (`2500ms`). */
export function promDuration(ms: number): string {
  const whole = Math.max(1, Math.round(ms));
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`;
}

export function prometheusMetricSource(options: PrometheusSourceOptions): MetricSource {
  const base = options.url.replace(/\/+$/, '');
  const endpoint = `${base}/api/v1/query`;
  const templates = resolveTemplates(options);
  const timeoutMs = options.timeoutMs ?? 5_000;
  const where = options.preset ? ` (preset "${options.preset}")` : '';

  async function evaluate(figure: PrometheusFigure, query: string, time: string): Promise<Series[]> {
    const field = `metrics.queries.${figure}${where}`;
    let status: number;
    let text: string;
    try {
      const response = await request(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ query, time }).toString(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (err) {
      throw ApplicationFailure.retryable(`Prometheus at ${base} could not be read for ${field}: ${err instanceof Error ? err.message : String(err)}`, 'MetricsUnavailable');
    }
    let answer: QueryAnswer | undefined;
    try {
      answer = JSON.parse(text) as QueryAnswer;
    } catch {
      answer = undefined;
    }
    if (status < 200 || status >= 300 || answer?.status !== 'success') {
      const why = answer?.error ? `${answer.errorType ?? 'error'}: ${answer.error}` : text.slice(0, 300);
      const message = `Prometheus at ${base} answered ${status} to ${field} (${query}): ${why}`;
      // A query Prometheus refuses (400 bad_data, 422 execution) stays refused; anything else may pass.
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) throw ApplicationFailure.nonRetryable(message, 'MetricsQueryRejected');
      throw ApplicationFailure.retryable(message, 'MetricsUnavailable');
    }
    const data = answer.data;
    if (data?.resultType === 'scalar' && Array.isArray(data.result)) return [{ metric: {}, value: data.result as [number, string] }];
    if (data?.resultType !== 'vector' || !Array.isArray(data.result)) {
      throw ApplicationFailure.nonRetryable(`${field} must answer an instant vector (or a scalar), not ${data?.resultType ?? 'nothing'}: ${query}`, 'MetricsQueryRejected');
    }
    return data.result as Series[];
  }

  async function readVersion(version: ModelVersion, target: string, window: MetricQuery['window']): Promise<VersionMetrics> {
    const values: Record<string, string> = {
      target: options.targetLabel ?? target,
      version: options.versionLabels?.[version.version] ?? version.version,
      interval: promDuration(window.endMs - window.startMs),
    };
    const time = (window.endMs / 1000).toFixed(3);
    const answers = await Promise.all(
      templates.map(async (t) => {
        const query = substitute(t.query, values);
        return { ...t, query, series: await evaluate(t.figure, query, time) };
      }),
    );
    const byFigure = new Map(answers.map((a) => [a.figure, a]));
    const span = `${new Date(window.startMs).toISOString()}–${new Date(window.endMs).toISOString()}`;
    const missing = (figure: PrometheusFigure, why: string) => {
      const a = byFigure.get(figure)!;
      return ApplicationFailure.retryable(
        `Prometheus at ${base} has ${why} for version ${version.version} in the window ${span} (${promDuration(window.endMs - window.startMs)}): metrics.queries.${figure}${where} = ${a.query}. Is Prometheus scraping it, do the labels match, and is the window at least two scrape intervals long?`,
        'MetricsMissing',
      );
    };

    const requestsValue = sumOf(byFigure.get('requests')!.series);
    if (requestsValue === undefined) throw missing('requests', 'no series for requests');
    const requests = count(requestsValue);
    const errors = Math.min(requests, count(sumOf(byFigure.get('errors')!.series) ?? 0));
    const latencyAnswer = byFigure.get('latency')!;
    let latency = histogramFromBuckets(latencyAnswer.series, latencyAnswer.le!, `metrics.queries.latency${where}`);
    if (!latency) {
      if (requests > 0) throw missing('latency', `${requests} requests but no latency histogram series`);
      latency = emptyHistogram();
    }
    const metrics: VersionMetrics = { ...emptyVersionMetrics(), requests, errors, latency };
    for (const figure of OPTIONAL_HISTOGRAM_FIGURES) {
      const answer = byFigure.get(figure);
      const histogram = answer && histogramFromBuckets(answer.series, answer.le!, `metrics.queries.${figure}${where}`);
      if (histogram) metrics[figure] = histogram;
    }
    for (const figure of ['cpuSeconds', 'memoryBytes', 'gpuUtilization', 'kvCacheUsage'] as const) {
      const answer = byFigure.get(figure);
      if (!answer) continue;
      const value = AVERAGED_FIGURES.includes(figure) ? meanOf(answer.series) : sumOf(answer.series);
      if (value === undefined) continue;
      metrics[figure] = figure === 'memoryBytes' ? count(value) : Math.max(0, value);
    }
    return metrics;
  }

  return {
    async read({ target, baseline, candidate, window }: MetricQuery) {
      if (!(window.endMs - window.startMs >= 1)) {
        // An empty window (the reading the workflow takes when it attaches the candidate) has nothing in it.
        return { kind: 'interval', sample: { baseline: emptyVersionMetrics(), candidate: emptyVersionMetrics() } };
      }
      const [b, c] = await Promise.all([readVersion(baseline, target, window), readVersion(candidate, target, window)]);
      // A version that served nothing gets the other's bucket edges, so that the two histograms compare.
      if (histogramTotal(b.latency) === 0 && histogramTotal(c.latency) > 0) b.latency = emptyHistogram(c.latency.boundsMs);
      if (histogramTotal(c.latency) === 0 && histogramTotal(b.latency) > 0) c.latency = emptyHistogram(b.latency.boundsMs);
      return { kind: 'interval', sample: { baseline: b, candidate: c } };
    },
  };
}

function substitute(template: string, values: Record<string, string>): string {
  return template.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name: string) => values[name] ?? whole);
}

function valueOf(series: Series): number {
  return Number.parseFloat(series.value[1]);
}

/** The sum of the series' finite values; undefined when there are none. */
function sumOf(series: Series[]): number | undefined {
  const finite = series.map(valueOf).filter(Number.isFinite);
  return finite.length === 0 ? undefined : finite.reduce((s, x) => s + x, 0);
}

function meanOf(series: Series[]): number | undefined {
  const sum = sumOf(series);
  return sum === undefined ? undefined : sum / series.map(valueOf).filter(Number.isFinite).length;
}

/** A count from an extrapolated `increase`: a whole number, never negative. */
function count(value: number): number {
  return Math.max(0, Math.round(value));
}

/** `le` in ms, the exact short decimal it means (`0.0175` s → 17.5 ms, never 17.499999999999996). */
function leToMs(le: number, unit: LeUnit): number {
  return unit === 'seconds' ? Number((le * 1000).toPrecision(12)) : le;
}

/**
 * Prometheus' cumulative `le` buckets as a per-bucket Histogram: the bounds are the `le` values
 * that came back (ms, sorted; +Inf last). Cumulative counts are rounded and made monotonic
 * first (each bucket's `increase` extrapolates on its own), so no bucket is negative. Undefined
 * when the query answered no series.
 */
export function histogramFromBuckets(series: Series[], unit: LeUnit, field: string): Histogram | undefined {
  const cumulative = new Map<number, number>();
  for (const s of series) {
    const label = s.metric.le;
    const le = label === '+Inf' ? Number.POSITIVE_INFINITY : label === undefined ? Number.NaN : Number.parseFloat(label);
    if (Number.isNaN(le)) {
      throw ApplicationFailure.nonRetryable(
        `${field} answered a series without a numeric le label (${JSON.stringify(s.metric)}): a histogram template must keep le, e.g. sum by (le) (increase(x_bucket[$interval]))`,
        'MetricsQueryRejected',
      );
    }
    const value = valueOf(s);
    const key = le === Number.POSITIVE_INFINITY ? le : leToMs(le, unit);
    cumulative.set(key, (cumulative.get(key) ?? 0) + (Number.isFinite(value) ? value : 0));
  }
  if (cumulative.size === 0) return undefined;
  const boundsMs = [...cumulative.keys()].filter(Number.isFinite).sort((a, b) => a - b);
  const counts: number[] = [];
  let below = 0;
  for (const edge of boundsMs) {
    const upTo = Math.max(below, count(cumulative.get(edge)!));
    counts.push(upTo - below);
    below = upTo;
  }
  const all = cumulative.get(Number.POSITIVE_INFINITY);
  counts.push(all === undefined ? 0 : Math.max(below, count(all)) - below);
  return { boundsMs, counts };
}
