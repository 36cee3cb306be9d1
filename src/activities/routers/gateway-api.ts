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
 *
 * A header match (TrafficRoute.match) adds rules right after the stepped one (see
 * MATCH_ANNOTATION): the stepped rule sends everyone to `others`, the added ones split the
 * requests whose header has one of the values. A change without a match removes them again.
 */
import { pathToFileURL } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { VERSION_PATTERN, VERSION_RULE } from '../../spec/patterns';
import { defineAdapter, refuseUnsupported, type AdapterSettings } from '../registry';
import type { RouteChange, RouteMatch, RouteVersion, TrafficRoute, TrafficRouter } from '../types';

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
  supports: ['match'],
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
interface HttpHeaderMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}
interface HttpRouteMatch {
  headers?: HttpHeaderMatch[];
  [more: string]: unknown;
}
interface HttpRouteFilter {
  type?: string;
  urlRewrite?: { path?: { type?: string } };
  requestRedirect?: { path?: { type?: string } };
  [more: string]: unknown;
}
interface HttpRouteRule {
  name?: string;
  matches?: HttpRouteMatch[];
  filters?: HttpRouteFilter[];
  backendRefs?: BackendRef[];
  [more: string]: unknown;
}
interface HttpRoute {
  metadata: { name: string; namespace?: string; resourceVersion?: string; annotations?: Record<string, string>; [more: string]: unknown };
  spec?: { rules?: HttpRouteRule[]; [more: string]: unknown };
  [more: string]: unknown;
}

/**
 * TrafficRoute.match on an HTTPRoute. The rule the router steps keeps its place (and name) and
 * sends every request to `others`; right after it, header-match rules (no name) carry the split:
 * the rule's matches with `{ type: Exact, name: <header>, value }` added, one per value, so they
 * are more specific than the rule's own (Gateway API: with equal paths and methods, the match
 * with more header matches wins). This annotation on the route records them, for readRoute and
 * for the next change (which replaces or removes them): `{ header, values, others, rules }`.
 */
export const MATCH_ANNOTATION = 'model-canary/header-match';
const matchRecord = z.object({
  header: z.string().min(1),
  values: z.array(z.string()).min(1),
  others: z.string().min(1),
  /** How many rules after the stepped one are the router's. */
  rules: z.number().int().min(1),
});
type MatchRecord = z.output<typeof matchRecord>;
/** Gateway API (v1) limits: rules per HTTPRoute, matches per rule. */
const MAX_RULES = 16;
const MAX_MATCHES_PER_RULE = 64;
/** An HTTPHeaderMatch name (Gateway API's pattern), lower case as TrafficRoute.match has it. */
const MATCH_HEADER = /^[a-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;
/** A header value HTTP can carry and Gateway API takes (1-4096): no control characters, no outer spaces (HTTP trims them). */
const MATCH_VALUE = /^[^\x00-\x20\x7f]([^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$/;
const MAX_MATCH_VALUE = 4096;

/** The route's match, checked for what an HTTPRoute can express (undefined: every request is split). */
function matchOf(route: TrafficRoute, options: GatewayApiOptions): RouteMatch | undefined {
  const match = route.match;
  if (!match) return undefined;
  const invalid = (message: string) => ApplicationFailure.nonRetryable(`route of ${route.target}: ${message}`, 'InvalidRoute');
  if (typeof match.header !== 'string' || !MATCH_HEADER.test(match.header)) {
    throw invalid(`match.header ${JSON.stringify(match.header)} must be an HTTP header name in lower case (1-256 letters, digits and !#$%&'*+-.^_\`|~)`);
  }
  if (!Array.isArray(match.values) || match.values.length === 0) throw invalid('match.values must list at least one header value');
  const values: string[] = [];
  for (const value of match.values) {
    if (typeof value !== 'string' || value.length > MAX_MATCH_VALUE || !MATCH_VALUE.test(value)) {
      throw invalid(`match.values: ${JSON.stringify(value)} must be a header value of 1-${MAX_MATCH_VALUE} characters, without control characters or outer spaces`);
    }
    if (!values.includes(value)) values.push(value);
  }
  if (!route.versions.some((v) => v.version === match.others) || !options.backends[match.others]) {
    throw invalid(`match.others "${match.others}" must be a version of the route with a Service in routing.backends: requests without the header go to it`);
  }
  return { header: match.header, values, others: match.others };
}

/** Whether a ReplacePrefixMatch path filter (URLRewrite, RequestRedirect; of the rule or a backendRef) limits the rule to one match (a CEL rule of the CRD). */
function onePrefixMatchOnly(rule: HttpRouteRule): boolean {
  const prefixFilter = (f: HttpRouteFilter) => f.urlRewrite?.path?.type === 'ReplacePrefixMatch' || f.requestRedirect?.path?.type === 'ReplacePrefixMatch';
  return (rule.filters ?? []).some(prefixFilter) || (rule.backendRefs ?? []).some((ref) => ((ref.filters as HttpRouteFilter[] | undefined) ?? []).some(prefixFilter));
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

  const findRuleIndex = (route: HttpRoute): number => {
    const rules = route.spec?.rules ?? [];
    const index =
      'index' in options.rule ? (options.rule.index < rules.length ? options.rule.index : -1) : rules.findIndex((r) => r.name === (options.rule as { name: string }).name);
    if (index < 0) {
      const names = rules.map((r, i) => (r.name ? `${i} "${r.name}"` : String(i))).join(', ');
      throw ApplicationFailure.nonRetryable(`${routeName} has no ${ruleName} (routing.rule); its rules: ${names || 'none'}`, 'RuleNotFound');
    }
    return index;
  };

  /** What the route's match annotation says the router added after the rule (undefined: no match in place). */
  const matchRecordOf = (route: HttpRoute): MatchRecord | undefined => {
    const raw = route.metadata.annotations?.[MATCH_ANNOTATION];
    if (raw === undefined) return undefined;
    let parsed: ReturnType<typeof matchRecord.safeParse> | undefined;
    try {
      parsed = matchRecord.safeParse(JSON.parse(raw));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      throw ApplicationFailure.nonRetryable(`${routeName} has an annotation ${MATCH_ANNOTATION} the router did not write (${raw.slice(0, 200)}): remove it`, 'InvalidRouterState');
    }
    return parsed.data;
  };

  /** The header-match rules the router added after rule `index`, checked to be its own. */
  const matchRulesOf = (route: HttpRoute, index: number, record: MatchRecord): HttpRouteRule[] => {
    const rules = (route.spec?.rules ?? []).slice(index + 1, index + 1 + record.rules);
    const ours = (rule: HttpRouteRule) =>
      rule.name === undefined &&
      (rule.matches?.length ?? 0) > 0 &&
      rule.matches!.every((m) => (m.headers ?? []).some((h) => (h.type ?? 'Exact') === 'Exact' && h.name.toLowerCase() === record.header && record.values.includes(h.value)));
    if (rules.length !== record.rules || !rules.every(ours)) {
      throw ApplicationFailure.nonRetryable(
        `${where}: the ${record.rules} rule(s) after it are not the header-match rules the router added for ${record.header} (annotation ${MATCH_ANNOTATION}): were they moved or edited? Remove them and the annotation, or put them back`,
        'InvalidRouterState',
      );
    }
    return rules;
  };

  /** Sets the weights of the rule's backendRefs of our versions (`wanted`, integer weights; others of `backends` 0), changing the rule in place. */
  const setRefWeights = (rule: HttpRouteRule, wanted: Map<string, number>): void => {
    const refs = (rule.backendRefs ??= []);
    const placed = new Set<string>();
    for (const ref of refs) {
      const version = versionOf(ref);
      if (version === undefined) continue; // not ours: untouched
      // A version of `backends` that the route leaves out keeps its backendRef, with weight 0.
      ref.weight = wanted.get(version) ?? 0;
      placed.add(version);
    }
    for (const [version, weight] of wanted) {
      if (placed.has(version)) continue;
      const backend = options.backends[version]!;
      refs.push({ group: '', kind: 'Service', name: backend.name, ...(backend.namespace ? { namespace: backend.namespace } : {}), port: backend.port, weight });
    }
  };

  /** The integer weights `route` asks for, by version (its captured ones when it still asks for them). */
  const wantedWeights = (route: TrafficRoute): Map<string, number> => {
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
    return wanted;
  };

  /**
   * `current` changed (in place) to serve `route`. Without a match: the rule's weights, as ever
   * (and the router's header-match rules of an earlier step removed). With one: the rule sends
   * everything to `others` (weight 1; our other versions 0), and header-match rules right after
   * it — the rule's matches, each with the header at one of the values added (so they are more
   * specific and win), its filters and other fields, and the weighted backendRefs — split the
   * matching requests. One rule holds all the matches, unless a ReplacePrefixMatch filter allows
   * only one match per rule (then one rule per match). Idempotent: applying the same route again
   * changes nothing (setWeights verifies with it).
   */
  const apply = (current: HttpRoute, route: TrafficRoute, match: RouteMatch | undefined): void => {
    const index = findRuleIndex(current);
    const rules = current.spec!.rules!;
    const rule = rules[index]!;
    const record = matchRecordOf(current);
    if (record) rules.splice(index + 1, matchRulesOf(current, index, record).length);
    const wanted = wantedWeights(route);
    const annotations = (current.metadata.annotations ??= {});
    if (!match) {
      setRefWeights(rule, wanted);
      delete annotations[MATCH_ANNOTATION];
      if (Object.keys(annotations).length === 0) delete current.metadata.annotations;
      return;
    }
    // The split first, from the rule's backendRefs as they are (backendRefs of no version included, as without a match).
    const split = structuredClone(rule.backendRefs ?? []);
    setRefWeights({ backendRefs: split }, wanted);
    setRefWeights(rule, new Map([[match.others, 1]]));

    const base = rule.matches?.length ? rule.matches : [{ path: { type: 'PathPrefix', value: '/' } }];
    for (const m of base) {
      if ((m.headers ?? []).some((h) => h.name.toLowerCase() === match.header)) {
        throw ApplicationFailure.nonRetryable(`${where} already matches on the header ${match.header}: a route's match cannot use it`, 'InvalidRoute');
      }
    }
    const matches = match.values.flatMap((value) =>
      base.map((m) => ({ ...structuredClone(m), headers: [...structuredClone(m.headers ?? []), { type: 'Exact' as const, name: match.header, value }] })),
    );
    const perRule = onePrefixMatchOnly(rule) ? 1 : MAX_MATCHES_PER_RULE;
    const { name: _name, matches: _matches, backendRefs: _refs, ...rest } = rule;
    const added: HttpRouteRule[] = [];
    for (let at = 0; at < matches.length; at += perRule) {
      added.push({ ...structuredClone(rest), matches: matches.slice(at, at + perRule), backendRefs: structuredClone(split) });
    }
    if (rules.length + added.length > MAX_RULES) {
      throw ApplicationFailure.nonRetryable(
        `${where}: the match on ${match.header} (${match.values.length} value(s)) needs ${added.length} more rule(s), and an HTTPRoute holds at most ${MAX_RULES} (it has ${rules.length})`,
        'InvalidRoute',
      );
    }
    rules.splice(index + 1, 0, ...added);
    const stored: MatchRecord = { header: match.header, values: match.values, others: match.others, rules: added.length };
    annotations[MATCH_ANNOTATION] = JSON.stringify(stored);
  };

  /** A rule's backendRefs as versions and weights (percent), with their integer weights for restoring exactly. */
  const splitOf = (rule: HttpRouteRule): { versions: RouteVersion[]; weights: Record<string, number> } | undefined => {
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
    return { versions, weights: Object.fromEntries(serving.map(([version, e]) => [version, e.weight])) };
  };

  /** Where `now` differs from `expected` (the route written) in the rule and its header-match rules. */
  const differencesOf = (now: HttpRoute, expected: HttpRoute): string[] => {
    const differences: string[] = [];
    const weightsOf = (rule: HttpRouteRule) => {
      const got = new Map<string, { ref: BackendRef; weight: number }>();
      for (const ref of rule.backendRefs ?? []) {
        const version = versionOf(ref);
        if (version !== undefined) got.set(version, { ref, weight: ref.weight ?? 1 });
      }
      return got;
    };
    const compareWeights = (got: HttpRouteRule, want: HttpRouteRule, label: string) => {
      const actual = weightsOf(got);
      for (const [version, { ref, weight }] of weightsOf(want)) {
        const a = actual.get(version);
        if (a?.weight !== weight) differences.push(`${label}${version} (${describe(ref)}): ${a === undefined ? 'no backendRef' : `weight ${a.weight}`}, expected ${weight}`);
      }
    };
    const index = findRuleIndex(now);
    const wantRecord = expected.metadata.annotations?.[MATCH_ANNOTATION];
    const gotRecord = now.metadata.annotations?.[MATCH_ANNOTATION];
    compareWeights(now.spec!.rules![index]!, expected.spec!.rules![findRuleIndex(expected)]!, '');
    if (gotRecord !== wantRecord) differences.push(`annotation ${MATCH_ANNOTATION}: ${gotRecord ?? 'none'}, expected ${wantRecord ?? 'none'}`);
    else if (wantRecord !== undefined) {
      const want = matchRulesOf(expected, findRuleIndex(expected), matchRecordOf(expected)!);
      const got = matchRulesOf(now, index, matchRecordOf(now)!);
      want.forEach((rule, i) => {
        compareWeights(got[i]!, rule, `header-match rule ${index + 1 + i}: `);
        if (canonical(got[i]!.matches) !== canonical(rule.matches)) differences.push(`header-match rule ${index + 1 + i}: matches ${canonical(got[i]!.matches)}, expected ${canonical(rule.matches)}`);
      });
    }
    return differences;
  };

  const router: TrafficRouter = {
    async setWeights(route: TrafficRoute, _change: RouteChange) {
      refuseUnsupported('gateway-api', gatewayApiRouter.supports, route);
      const match = matchOf(route, options);
      const objects = await client();
      let written: HttpRoute | undefined;
      for (let attempt = 1; ; attempt += 1) {
        const current = await read();
        if (!current) throw ApplicationFailure.nonRetryable(`${routeName} does not exist (routing.httpRoute, routing.namespace)`, 'RouteNotFound');
        apply(current, route, match);
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
      // What serving `route` looks like from here (apply is idempotent): what ours wrote, unless someone changed it since.
      const expected = structuredClone(now);
      apply(expected, route, match);
      const differences = differencesOf(now, expected);
      if (differences.length > 0) {
        throw new Error(`${where} does not serve the weights written: ${differences.join('; ')}`);
      }
    },

    async readRoute(target: string) {
      const current = await read();
      if (!current) return undefined;
      const index = findRuleIndex(current);
      const record = matchRecordOf(current);
      const matchRules = record ? matchRulesOf(current, index, record) : [];
      // With a match in place, the split is the header-match rules' (the rule itself sends everything else to `others`).
      const split = splitOf(matchRules[0] ?? current.spec!.rules![index]!);
      if (!split) return undefined;
      const route: TrafficRoute = {
        target,
        versions: split.versions,
        // The integer weights as they are (e.g. 1, not 10000): restoring this route writes them back.
        routerState: { weights: JSON.stringify(split.weights) },
      };
      if (record) {
        // The values the rules match on, as they serve (in order, once each).
        const values: string[] = [];
        for (const rule of matchRules) {
          for (const m of rule.matches ?? []) {
            const value = m.headers?.find((h) => h.name.toLowerCase() === record.header)?.value;
            if (value !== undefined && !values.includes(value)) values.push(value);
          }
        }
        route.match = { header: record.header, values, others: record.others };
      }
      return route;
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

/** JSON with object keys sorted (the API server gives fields back in its own order). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
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
