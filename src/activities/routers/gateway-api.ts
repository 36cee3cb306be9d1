/**
 * A Gateway API HTTPRoute (gateway.networking.k8s.io/v1) as a TrafficRouter: the weights of the
 * backendRefs of one rule of the route, read and replaced through the Kubernetes API.
 *
 * `routing: { kind: "gateway-api", namespace, httpRoute, rule, backends }`: `rule` picks the
 * rule (`{ index }`, or `{ name }`: the rule's `name`, Gateway API v1.4+), `backends` says which
 * Service port serves each version. Only the `weight` of that rule's backendRefs is written (a
 * version with no backendRef in the rule gets one appended); every other rule, match, filter and
 * backendRef stays as it is. A backend in another namespace needs a ReferenceGrant there, as
 * usual. The worker's identity needs `get` and `update` on httproutes in the namespace.
 */
import { pathToFileURL } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { VERSION_PATTERN, VERSION_RULE } from '../../spec/patterns';
import { defineAdapter, type AdapterSettings } from '../registry';
import type { RouteChange, RouteVersion, TrafficRoute, TrafficRouter } from '../types';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL_RULE = "a DNS label (lower-case letters, digits and '-', at most 63 characters)";

const dnsLabel = (what: string) => z.string({ error: `${what} must be a string` }).regex(DNS_LABEL, `${what} must be ${DNS_LABEL_RULE}`);

const backendSchema = z.strictObject(
  {
    name: dnsLabel("a routing.backends entry's name (its Service)"),
    port: z
      .number({ error: "a routing.backends entry's port must be a number" })
      .int("a routing.backends entry's port must be an integer")
      .min(1, "a routing.backends entry's port must be 1-65535")
      .max(65535, "a routing.backends entry's port must be 1-65535"),
    namespace: dnsLabel("a routing.backends entry's namespace").optional(),
  },
  { error: 'each routing.backends entry must be an object with "name" and "port" of its Service (and "namespace", when not the route\'s)' },
);

const backendsSchema = z
  .record(z.string().regex(VERSION_PATTERN, `routing.backends keys must be version names: ${VERSION_RULE}`), backendSchema, {
    error: 'routing.backends must be an object: { "<version>": { "name": "<service>", "port": <port> } }',
  })
  .superRefine((backends, ctx) => {
    const versions = Object.keys(backends);
    if (versions.length === 0) ctx.addIssue({ code: 'custom', message: 'routing.backends must name the Service of at least one version' });
    const seen = new Map<string, string>();
    for (const version of versions) {
      const backend = backends[version]!;
      const key = `${backend.namespace ?? ''}/${backend.name}:${backend.port}`;
      const other = seen.get(key);
      if (other !== undefined) {
        ctx.addIssue({ code: 'custom', path: [version], message: `routing.backends.${version} is the same Service port as routing.backends.${other}: each version needs its own` });
      }
      seen.set(key, version);
    }
  });

/** Where a version serves: a Service port (in the route's namespace unless `namespace` says otherwise). */
export type Backend = z.output<typeof backendSchema>;

export const gatewayApiOptions = z.strictObject(
  {
    kind: z.literal('gateway-api'),
    namespace: dnsLabel('routing.namespace'),
    httpRoute: z
      .string({ error: 'routing.httpRoute must be a string' })
      .regex(DNS_SUBDOMAIN, "routing.httpRoute must be the HTTPRoute's name (a DNS subdomain: lower-case letters, digits, '-' and '.', at most 253 characters)"),
    rule: z.union(
      [
        z.strictObject({
          index: z
            .number({ error: 'routing.rule.index must be a number' })
            .int('routing.rule.index must be an integer')
            .min(0, 'routing.rule.index must be 0 or more'),
        }),
        z.strictObject({ name: dnsLabel('routing.rule.name') }),
      ],
      { error: 'routing.rule must be { "index": <n> } (the rule\'s position in spec.rules, from 0) or { "name": "<rule name>" }' },
    ),
    backends: backendsSchema,
    kubeconfig: z.string({ error: 'routing.kubeconfig must be a string (a kubeconfig file path on the worker)' }).min(1, 'routing.kubeconfig must not be empty').optional(),
  },
  { error: 'routing must be an object' },
);

export type GatewayApiOptions = z.output<typeof gatewayApiOptions>;

/** `routing: { kind: "gateway-api", ... }`: one rule of an HTTPRoute (see the top of this file). */
export const gatewayApiRouter = defineAdapter({
  kind: 'gateway-api',
  options: gatewayApiOptions,
  versionUrls: 'unused',
  checkVersions: (options, versions) =>
    versions
      .filter((version) => !options.backends[version])
      .map((version) => ({ path: ['backends'], message: `routing.backends has no entry for version ${version}: give its Service, e.g. "${version}": { "name": "…", "port": 8000 }` })),
  create: (options, settings): TrafficRouter => gatewayApiTrafficRouter(options, settings),
});

/** For tests: hooks to race another writer, between the read and the write of each attempt, and after the write. */
export interface GatewayApiHooks {
  beforeWrite?(attempt: number): Promise<void>;
  afterWrite?(): Promise<void>;
}

/**
 * Kubernetes weights are integers, ours are percents in steps of 0.01 (src/spec/patterns.ts): a
 * percent is written times 100, so a split is out of 10,000 and 0.25% is 25 against 9,975 —
 * the gateway's own resolution (10,000 buckets), well within Gateway API's 0-1,000,000.
 */
const WEIGHT_SCALE = 100;
const CONFLICT_RETRIES = 5;
const GROUP = 'gateway.networking.k8s.io';
const API_VERSION = 'v1';
const PLURAL = 'httproutes';

/** An HTTPRoute rule's backendRef (Gateway API v1), as far as the router reads it. */
export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [more: string]: unknown;
}
interface HttpRouteRule {
  name?: string;
  backendRefs?: BackendRef[];
  [more: string]: unknown;
}
interface HttpRoute {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [more: string]: unknown };
  spec?: { rules?: HttpRouteRule[]; [more: string]: unknown };
  [more: string]: unknown;
}

type KubeClient = typeof import('@kubernetes/client-node');
type CustomObjects = import('@kubernetes/client-node').CustomObjectsApi;

let clientModule: Promise<KubeClient> | undefined;
/**
 * @kubernetes/client-node is ESM-only and large: loaded on first use, so that importing this
 * file (every spec validation does, for the options schema) stays cheap. A native import()
 * (kept from the CommonJS compilation, which would turn it into a require() of an ES module:
 * Node ≥ 20.19 only); where there is none (Jest's vm modules), the compiled import(), which
 * Jest serves by transforming the ES modules (jest.config.js, transformIgnorePatterns).
 */
function loadClient(): Promise<KubeClient> {
  clientModule ??= (async () => {
    const file = pathToFileURL(require.resolve('@kubernetes/client-node')).href;
    try {
      return (await nativeImport(file)) as KubeClient;
    } catch (err) {
      // Jest runs modules in a vm context without --experimental-vm-modules: it has no import().
      if (!String((err as { code?: unknown } | null)?.code).startsWith('ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING')) throw err;
      return await import('@kubernetes/client-node');
    }
  })().catch((err: unknown) => {
    clientModule = undefined;
    throw err;
  });
  return clientModule;
}
// Built once from a string, so that the CommonJS compilation cannot turn it into a require().
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

export function gatewayApiTrafficRouter(options: GatewayApiOptions, settings: AdapterSettings, hooks: GatewayApiHooks = {}): TrafficRouter {
  const { namespace, httpRoute } = options;
  const routeName = `HTTPRoute ${namespace}/${httpRoute}`;
  const ruleName = 'index' in options.rule ? `rule ${options.rule.index}` : `rule "${options.rule.name}"`;
  const where = `${routeName} (routing.rule: ${ruleName})`;
  const kubeconfig = options.kubeconfig ?? settings.kubeconfig;
  const backendNamespace = (ns: string | undefined) => ns ?? namespace;
  const sameBackend = (ref: BackendRef, backend: Backend) =>
    (ref.group ?? '') === '' &&
    (ref.kind ?? 'Service') === 'Service' &&
    ref.name === backend.name &&
    ref.port === backend.port &&
    backendNamespace(ref.namespace) === backendNamespace(backend.namespace);
  const versionOf = (ref: BackendRef) => Object.keys(options.backends).find((v) => sameBackend(ref, options.backends[v]!));
  const describe = (ref: BackendRef) => `svc/${backendNamespace(ref.namespace)}/${ref.name}${ref.port === undefined ? '' : `:${ref.port}`}`;

  let api: Promise<CustomObjects> | undefined;
  const client = (): Promise<CustomObjects> => {
    api ??= (async () => {
      const k8s = await loadClient();
      const kc = new k8s.KubeConfig();
      if (kubeconfig) {
        try {
          kc.loadFromFile(kubeconfig);
        } catch (err) {
          throw ApplicationFailure.nonRetryable(`cannot load the kubeconfig ${kubeconfig} for ${routeName}: ${messageOf(err)}`, 'KubeconfigInvalid');
        }
      } else {
        if (!process.env.KUBERNETES_SERVICE_HOST) {
          throw ApplicationFailure.nonRetryable(
            `no Kubernetes API for ${routeName}: the worker has no KUBECONFIG, the spec no routing.kubeconfig, and it does not run in a cluster`,
            'KubeconfigInvalid',
          );
        }
        kc.loadFromCluster();
      }
      return kc.makeApiClient(k8s.CustomObjectsApi);
    })().catch((err: unknown) => {
      api = undefined;
      throw err;
    });
    return api;
  };

  const read = async (): Promise<HttpRoute | undefined> => {
    const objects = await client();
    try {
      return (await objects.getNamespacedCustomObject({ group: GROUP, version: API_VERSION, namespace, plural: PLURAL, name: httpRoute })) as HttpRoute;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw kubeFailure(err, `reading ${routeName}`);
    }
  };

  const findRule = (route: HttpRoute): HttpRouteRule => {
    const rules = route.spec?.rules ?? [];
    const rule =
      'index' in options.rule ? rules[options.rule.index] : rules.find((r) => r.name === (options.rule as { name: string }).name);
    if (!rule) {
      const names = rules.map((r, i) => (r.name ? `${i} "${r.name}"` : String(i))).join(', ');
      throw ApplicationFailure.nonRetryable(`${routeName} has no ${ruleName} (routing.rule); its rules: ${names || 'none'}`, 'RuleNotFound');
    }
    return rule;
  };

  /** The rule's backendRefs with the weights `route` asks for (the rule is changed in place). */
  const applyWeights = (rule: HttpRouteRule, route: TrafficRoute): Map<BackendRef, number> => {
    const wanted = new Map<string, number>();
    const exact = exactWeights(route);
    for (const v of route.versions) {
      if (!options.backends[v.version]) {
        throw ApplicationFailure.nonRetryable(
          `version "${v.version}" of ${route.target} has no Service in routing.backends (it names ${Object.keys(options.backends).join(', ')}), so ${routeName} cannot send it traffic`,
          'InvalidRoute',
        );
      }
      wanted.set(v.version, exact?.get(v.version) ?? Math.round(v.weight * WEIGHT_SCALE));
    }
    const refs = (rule.backendRefs ??= []);
    const expected = new Map<BackendRef, number>();
    const placed = new Set<string>();
    for (const ref of refs) {
      const version = versionOf(ref);
      if (version === undefined) continue; // not ours: untouched
      // A version of `backends` that the route leaves out keeps its backendRef, with weight 0.
      const weight = wanted.get(version) ?? 0;
      ref.weight = weight;
      expected.set(ref, weight);
      placed.add(version);
    }
    for (const [version, weight] of wanted) {
      if (placed.has(version)) continue;
      const backend = options.backends[version]!;
      const ref: BackendRef = { group: '', kind: 'Service', name: backend.name, ...(backend.namespace ? { namespace: backend.namespace } : {}), port: backend.port, weight };
      refs.push(ref);
      expected.set(ref, weight);
    }
    return expected;
  };

  const router: TrafficRouter = {
    async setWeights(route: TrafficRoute, _change: RouteChange) {
      const objects = await client();
      let written: HttpRoute | undefined;
      for (let attempt = 1; ; attempt += 1) {
        const current = await read();
        if (!current) throw ApplicationFailure.nonRetryable(`${routeName} does not exist (routing.httpRoute, routing.namespace)`, 'RouteNotFound');
        applyWeights(findRule(current), route);
        await hooks.beforeWrite?.(attempt);
        try {
          // A replace carrying the resourceVersion read: a change made since is a 409, never overwritten.
          written = (await objects.replaceNamespacedCustomObject({
            group: GROUP,
            version: API_VERSION,
            namespace,
            plural: PLURAL,
            name: httpRoute,
            body: current,
          })) as HttpRoute;
          break;
        } catch (err) {
          const status = statusOf(err);
          if (status === 409 && attempt < CONFLICT_RETRIES) continue;
          if (status === 409) throw ApplicationFailure.retryable(`${routeName} kept changing while its weights were written (${attempt} conflicts)`, 'Conflict');
          if (status === 404) throw ApplicationFailure.nonRetryable(`${routeName} was deleted while its weights were written`, 'RouteNotFound');
          throw kubeFailure(err, `writing the weights of ${where}`);
        }
      }
      await hooks.afterWrite?.();
      // Read back what serves now: another writer may have changed it right after ours.
      const now = await read();
      if (!now) throw new Error(`${routeName} is gone right after its weights were written (resourceVersion ${written?.metadata.resourceVersion})`);
      const rule = findRule(now);
      const expected = applyWeights(structuredClone(rule), route);
      const got = new Map<string, number>();
      for (const ref of rule.backendRefs ?? []) {
        const version = versionOf(ref);
        if (version !== undefined) got.set(version, ref.weight ?? 1);
      }
      const differences: string[] = [];
      for (const [ref, weight] of expected) {
        const version = versionOf(ref)!;
        const actual = got.get(version);
        if (actual !== weight) differences.push(`${version} (${describe(ref)}): ${actual === undefined ? 'no backendRef' : `weight ${actual}`}, expected ${weight}`);
      }
      if (differences.length > 0) {
        throw new Error(`${where} does not serve the weights written: ${differences.join('; ')}`);
      }
    },

    async readRoute(target: string) {
      const current = await read();
      if (!current) return undefined;
      const rule = findRule(current);
      const refs = (rule.backendRefs ?? []).map((ref) => ({ ref, weight: ref.weight ?? 1 }));
      if (refs.length === 0) return undefined;
      const named = new Map<string, { ref: BackendRef; weight: number }>();
      for (const entry of refs) {
        // A backendRef of no version of `backends` is reported under its Service's name, so that
        // a mismatch with the spec's baseline says what serves instead.
        const ours = versionOf(entry.ref);
        let version = ours ?? entry.ref.name;
        const taken = named.get(version);
        if (!ours && taken && describe(taken.ref) !== describe(entry.ref)) version = `${entry.ref.name}:${entry.ref.port ?? ''}`;
        // Two backendRefs of one Service port serve it twice as much: their weights add up.
        const same = named.get(version);
        if (same) same.weight += entry.weight;
        else named.set(version, { ...entry });
      }
      const total = [...named.values()].reduce((sum, e) => sum + e.weight, 0);
      const serving = total === 0 ? [...named] : [...named].filter(([, e]) => e.weight > 0);
      const versions: RouteVersion[] = serving.map(([version, { ref, weight }]) => ({
        version,
        weight: total === 0 ? 0 : Math.round((weight / total) * 100 * WEIGHT_SCALE) / WEIGHT_SCALE,
        url: describe(ref),
      }));
      if (total > 0) fixRounding(versions);
      return {
        target,
        versions,
        // The integer weights as they are (e.g. 1, not 10000): restoring this route writes them back.
        routerState: { weights: JSON.stringify(Object.fromEntries(serving.map(([version, e]) => [version, e.weight]))) },
      };
    },
  };
  return router;
}

/**
 * The integer weights readRoute captured (routerState.weights), when `route` still asks for the
 * split they make: then restoring the route writes exactly what was there.
 */
function exactWeights(route: TrafficRoute): Map<string, number> | undefined {
  const raw = route.routerState?.weights;
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const weights = new Map<string, number>();
  for (const [version, weight] of Object.entries(parsed)) {
    if (!Number.isInteger(weight) || (weight as number) < 0) return undefined;
    weights.set(version, weight as number);
  }
  const total = [...weights.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  for (const v of route.versions) {
    const percent = ((weights.get(v.version) ?? 0) / total) * 100;
    if (Math.abs(percent - v.weight) > 0.005 + 1e-9) return undefined;
  }
  if ([...weights.keys()].some((version) => !route.versions.some((v) => v.version === version))) return undefined;
  return weights;
}

/** Rounded to 0.01, the percents may miss 100 by a step: the largest takes the difference. */
function fixRounding(versions: RouteVersion[]): void {
  const sum = versions.reduce((a, v) => a + v.weight, 0);
  const diff = Math.round((100 - sum) * WEIGHT_SCALE) / WEIGHT_SCALE;
  if (diff === 0 || versions.length === 0) return;
  const largest = versions.reduce((a, b) => (b.weight > a.weight ? b : a));
  largest.weight = Math.round((largest.weight + diff) * WEIGHT_SCALE) / WEIGHT_SCALE;
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The Kubernetes Status message of an API error (its body), else the error's own message. */
function messageOf(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.slice(0, 500) || String((err as Error)?.message ?? err);
    }
  }
  const message = (parsed as { message?: unknown } | null)?.message;
  if (typeof message === 'string') return message;
  const text = err instanceof Error ? err.message : String(err);
  // client-node's own text for a status without a body: "HTTP-Code: 401\nMessage: Unauthorized\nBody: ...\nHeaders: ..."
  return /^HTTP-Code: \d+\nMessage: (.*)$/m.exec(text)?.[1] ?? text;
}

/**
 * An API error, classified: what retrying cannot fix (401, 403, 400, 422: the identity, its
 * permissions, an invalid object) fails the activity for good; the rest (5xx, 429, the network)
 * is retried by the activity's policy.
 */
function kubeFailure(err: unknown, doing: string): Error {
  const status = statusOf(err);
  if (status === undefined) {
    if (err instanceof ApplicationFailure) return err;
    return ApplicationFailure.retryable(`${doing}: ${messageOf(err)}`, 'KubernetesUnavailable');
  }
  const message = `${doing}: the Kubernetes API answered ${status}: ${messageOf(err)}`;
  if (status === 401) return ApplicationFailure.nonRetryable(`${message} (the worker's credentials are not accepted)`, 'Unauthorized');
  if (status === 403) return ApplicationFailure.nonRetryable(`${message} (the worker's identity needs get and update on httproutes.${GROUP} in that namespace)`, 'Forbidden');
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return ApplicationFailure.nonRetryable(message, 'KubernetesRejected');
  return ApplicationFailure.retryable(message, 'KubernetesUnavailable');
}
