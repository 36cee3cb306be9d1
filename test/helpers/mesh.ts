/**
 * A test double of the user's Gateway API implementation (Istio, Envoy Gateway, ...) and of its
 * Istio telemetry: both are outside model-canary, which only writes an HTTPRoute and reads
 * Prometheus. Everything around it is real: the Gateway API router writes the HTTPRoute to a real
 * kube-apiserver (test/helpers/kube.ts), and a real Prometheus scrapes this double's `/metrics`.
 *
 *   const mesh = await startMesh({ kube, namespace: 'default', httpRoute: 'chat',
 *     services: { 'chat-v1': v1.url, 'chat-v2': v2.url }, versions: { 'chat-v1': 'v1', 'chat-v2': 'v2' },
 *     targetService: 'chat' });
 *   ... traffic to mesh.url, Prometheus scraping mesh.host ...
 *   await mesh.close();
 *
 * What it does, as a Gateway's data plane would:
 *  - it polls the HTTPRoute from the apiserver (every `pollMs`, as the admin: the cluster's token
 *    and CA) and keeps the last copy it read (an apiserver that does not answer leaves the
 *    config as it was; a route that is gone serves nothing: 404);
 *  - each request is matched against the route's rules (path `PathPrefix`/`Exact` and exact
 *    header matches; the Gateway API precedence: the longest path, then the most header
 *    matches, then the rule's order) and sent to one of the matching rule's backendRefs at random
 *    by weight (an Envoy weighted cluster; weight defaults to 1, all 0 is a 500), to that Service's
 *    URL in `services` (a backendRef of a Service not there is an invalid backend: 500), with the
 *    path kept, except for a `URLRewrite` filter's `ReplacePrefixMatch`, which it applies. Other
 *    filters, hostnames and parentRefs are ignored;
 *  - it exports Istio's standard metrics of what it proxied at `GET /metrics` (prom-client, a
 *    Registry of its own): `istio_requests_total` and `istio_request_duration_milliseconds`
 *    (buckets: LATENCY_BUCKETS_MS, `le` in ms, as Istio's), each request reported twice, as
 *    Istio does: by the gateway (`reporter="source"`) and by the destination's sidecar
 *    (`reporter="destination"`), with `destination_canonical_service` (and `destination_service_name`) = `targetService`,
 *    `destination_version` = the backend Service's entry in `versions` (its pods' `version`
 *    label), `response_code` (on the counter only).
 *
 * Why the `istio` preset selects on `destination_canonical_service` (the pods' `app` label, the
 * same for every version), not `destination_service_name`: a destination's sidecar names in the
 * latter a Service selecting its pods, the first created when several do (istio/istio#33940) —
 * with per-version Services (`chat-v1`, `chat-v2`, as the backendRefs name them) that differs by
 * version. This double reports `targetService` in both labels.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS_MS } from '../../src/analysis/metrics';
import type { BackendRef } from '../../src/activities/routers/gateway-api';
import { listen } from './http';
import type { KubeCluster } from './kube';

export interface MeshOptions {
  kube: KubeCluster;
  namespace: string;
  /** The HTTPRoute's name (in `namespace`). */
  httpRoute: string;
  /** Backend Service name → the URL where it serves (e.g. a demo model server's). */
  services: Record<string, string>;
  /** Backend Service name → its pods' `version` label (`destination_version`); default: the Service name. */
  versions?: Record<string, string>;
  /** What Istio reports as `destination_canonical_service` (and here `destination_service_name` too): the pods' `app` label. */
  targetService: string;
  /** How often the HTTPRoute is read (ms); default 200. */
  pollMs?: number;
}

export interface Mesh {
  /** http://127.0.0.1:<port>: send traffic here. */
  url: string;
  /** 127.0.0.1:<port>, as a Prometheus target (`/metrics`). */
  host: string;
  /** Requests proxied so far, by backend Service name. */
  served(): Record<string, number>;
  /** The HTTPRoute as last read (undefined: none, or not read yet). */
  route(): HttpRoute | undefined;
  /** Resolves once the mesh serves a copy of the route at least as new as `resourceVersion`. */
  synced(resourceVersion: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface HttpRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: Array<{ type?: 'Exact' | 'RegularExpression'; name: string; value: string }>;
  method?: string;
}
interface HttpRouteFilter {
  type: string;
  urlRewrite?: { path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string; replacePrefixMatch?: string } };
}
interface HttpRouteRule {
  name?: string;
  matches?: HttpRouteMatch[];
  filters?: HttpRouteFilter[];
  backendRefs?: BackendRef[];
}
export interface HttpRoute {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: { rules?: HttpRouteRule[] };
}

interface Chosen {
  rule: HttpRouteRule;
  match: HttpRouteMatch;
}

export async function startMesh(options: MeshOptions): Promise<Mesh> {
  const { kube, namespace, httpRoute, services, targetService } = options;
  const pollMs = options.pollMs ?? 200;
  const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/httproutes/${httpRoute}`;
  const versionOf = (service: string) => options.versions?.[service] ?? service;

  const registry = new Registry();
  const labelNames = ['reporter', 'destination_service', 'destination_service_name', 'destination_service_namespace', 'destination_canonical_service', 'destination_workload', 'destination_version'] as const;
  const requests = new Counter({
    name: 'istio_requests_total',
    help: 'Requests, as Istio counts them (test double: test/helpers/mesh.ts)',
    labelNames: [...labelNames, 'response_code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'istio_request_duration_milliseconds',
    help: 'Request durations in ms, as Istio measures them (test double: test/helpers/mesh.ts)',
    labelNames: [...labelNames],
    buckets: [...LATENCY_BUCKETS_MS],
    registers: [registry],
  });
  const counts: Record<string, number> = {};

  let current: HttpRoute | undefined;
  let readOnce = false;
  const poll = async () => {
    try {
      const res = await kube.request<HttpRoute>('GET', path);
      if (res.status === 200) current = res.body;
      else if (res.status === 404) current = undefined;
      // Anything else (the apiserver restarting, ...): keep serving the last config, as a gateway does.
      if (res.status === 200 || res.status === 404) readOnce = true;
    } catch {
      // unreachable: keep the last config
    }
  };
  let stopped = false;
  let polling: Promise<void> = poll();
  await polling;
  const timer = setInterval(() => {
    // One read at a time: a slow apiserver never piles up requests.
    polling = polling.then(() => (stopped ? undefined : poll()));
  }, pollMs);

  const agent = new Agent({ keepAlive: true, maxSockets: 128 });

  const record = (service: string, status: number, ms: number) => {
    counts[service] = (counts[service] ?? 0) + 1;
    for (const reporter of ['source', 'destination']) {
      const labels = {
        reporter,
        destination_service: `${targetService}.${namespace}.svc.cluster.local`,
        destination_service_name: targetService,
        destination_service_namespace: namespace,
        destination_canonical_service: targetService,
        destination_workload: service,
        destination_version: versionOf(service),
      };
      requests.inc({ ...labels, response_code: String(status) });
      duration.observe(labels, ms);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const [pathname = '/', query] = splitUrl(req.url ?? '/');
    if (req.method === 'GET' && pathname === '/metrics') {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(await registry.metrics());
      return;
    }
    const route = current;
    const chosen = route && chooseRule(route, pathname, req.headers, req.method ?? 'GET');
    if (!chosen) return reply(res, 404, readOnce ? `no rule of HTTPRoute ${namespace}/${httpRoute} matches ${req.method} ${pathname}` : 'the route was never read');
    const ref = pickBackend(chosen.rule.backendRefs ?? []);
    if (!ref) return reply(res, 500, 'every backendRef of the rule has weight 0');
    const base = services[ref.name];
    if (!base || (ref.kind ?? 'Service') !== 'Service' || (ref.group ?? '') !== '' || (ref.namespace ?? namespace) !== namespace) {
      return reply(res, 500, `invalid backendRef ${ref.namespace ?? namespace}/${ref.name}: no such Service in the mesh`);
    }
    const upstreamPath = rewrite(pathname, chosen) + (query === undefined ? '' : `?${query}`);
    const target = new URL(upstreamPath, base);
    const headers: IncomingHttpHeaders = { ...req.headers, host: target.host };
    delete headers.connection;
    const upstream = httpRequest(target, { method: req.method, headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.on('end', () => record(ref.name, up.statusCode ?? 502, performance.now() - started));
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      // Envoy's "upstream connect error or disconnect/reset before headers": a 503 of that backend.
      record(ref.name, 503, performance.now() - started);
      if (!res.headersSent) reply(res, 503, `upstream ${ref.name} unreachable`);
      else res.destroy();
    });
    req.pipe(upstream);
  };

  const server = await listen((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, String(err));
      else res.destroy();
    });
  });

  return {
    url: server.url,
    host: `127.0.0.1:${server.port}`,
    served: () => ({ ...counts }),
    route: () => current,
    async synced(resourceVersion, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      // resourceVersions are opaque, but etcd's revisions are increasing integers.
      while (!(current?.metadata.resourceVersion && Number(current.metadata.resourceVersion) >= Number(resourceVersion))) {
        if (Date.now() > deadline) throw new Error(`the mesh did not see HTTPRoute ${namespace}/${httpRoute} at resourceVersion ${resourceVersion} within ${timeoutMs} ms (it has ${current?.metadata.resourceVersion ?? 'none'})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      stopped = true;
      clearInterval(timer);
      await polling;
      await server.close();
      agent.destroy();
    },
  };
}

function splitUrl(url: string): [string, string | undefined] {
  const at = url.indexOf('?');
  return at < 0 ? [url, undefined] : [url.slice(0, at), url.slice(at + 1)];
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(`${message}\n`);
}

/** Whether `pathname` is under the prefix, on whole segments (`/chat` matches `/chat` and `/chat/x`, not `/chatty`). */
function underPrefix(pathname: string, prefix: string): boolean {
  const p = prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix;
  return p === '/' || pathname === p || pathname.startsWith(`${p}/`);
}

function matches(match: HttpRouteMatch, pathname: string, headers: IncomingHttpHeaders, method: string): boolean {
  const type = match.path?.type ?? 'PathPrefix';
  const value = match.path?.value ?? '/';
  if (type === 'Exact' && pathname !== value) return false;
  if (type === 'PathPrefix' && !underPrefix(pathname, value)) return false;
  if (type === 'RegularExpression' && !new RegExp(`^${value}$`).test(pathname)) return false;
  if (match.method && match.method !== method) return false;
  for (const h of match.headers ?? []) {
    const got = headers[h.name.toLowerCase()];
    const text = Array.isArray(got) ? got.join(',') : got;
    if (text === undefined) return false;
    if ((h.type ?? 'Exact') === 'Exact' ? text !== h.value : !new RegExp(`^${h.value}$`).test(text)) return false;
  }
  return true;
}

/** The Gateway API precedence among matching rules: exact paths, then the longest path, then the most header matches, then order. */
function chooseRule(route: HttpRoute, pathname: string, headers: IncomingHttpHeaders, method: string): Chosen | undefined {
  let best: { chosen: Chosen; key: number[] } | undefined;
  (route.spec?.rules ?? []).forEach((rule, index) => {
    for (const match of rule.matches?.length ? rule.matches : [{}]) {
      if (!matches(match, pathname, headers, method)) continue;
      const key = [match.path?.type === 'Exact' ? 1 : 0, (match.path?.value ?? '/').length, match.method ? 1 : 0, match.headers?.length ?? 0, -index];
      if (!best || compare(key, best.key) > 0) best = { chosen: { rule, match }, key };
    }
  });
  return best?.chosen;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** One backendRef at random by weight (default 1); undefined when all weigh 0. */
function pickBackend(refs: BackendRef[]): BackendRef | undefined {
  const total = refs.reduce((sum, r) => sum + (r.weight ?? 1), 0);
  if (total <= 0) return undefined;
  let x = Math.random() * total;
  for (const ref of refs) {
    x -= ref.weight ?? 1;
    if (x < 0 && (ref.weight ?? 1) > 0) return ref;
  }
  return refs.filter((r) => (r.weight ?? 1) > 0).at(-1);
}

/** The rule's URLRewrite path filter applied (ReplacePrefixMatch: the matched prefix replaced), else the path as it is. */
function rewrite(pathname: string, { rule, match }: Chosen): string {
  const path = rule.filters?.find((f) => f.type === 'URLRewrite')?.urlRewrite?.path;
  if (!path) return pathname;
  if (path.type === 'ReplaceFullPath') return path.replaceFullPath ?? '/';
  const prefix = (match.path?.value ?? '/').replace(/\/+$/, '');
  const rest = pathname.slice(prefix.length);
  const replacement = (path.replacePrefixMatch ?? '/').replace(/\/+$/, '');
  const joined = `${replacement}${rest.startsWith('/') || rest === '' ? rest : `/${rest}`}`;
  return joined === '' ? '/' : joined;
}
