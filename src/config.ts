import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { AdapterSettings } from './activities/registry';
import { GATEWAY_DEFAULTS, MAX_TIMER_MS } from './gateway/defaults';
import { parseUrlAllowList, type UrlAllowList } from './spec/url-allow-list';

/** Settings read from the environment, with the defaults design.md promises. */
export interface Config {
  temporalAddress: string;
  /** TLS to Temporal (TEMPORAL_TLS, TEMPORAL_TLS_*); unset: plaintext. See temporalConnectionOptions. */
  temporalTls?: TemporalTlsSettings;
  /** TEMPORAL_API_KEY: sent as `authorization: Bearer <key>` (implies TLS unless TEMPORAL_TLS=false). */
  temporalApiKey?: string;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string;
  apiPort: number;
  apiHost: string;
  /** API_TOKEN: the single legacy token, an `operator` named "api-token" (also in `apiTokens`). */
  apiToken?: string;
  /** Every API token (API_TOKENS_FILE or API_TOKENS, plus API_TOKEN): empty, the API is open. */
  apiTokens: ApiTokenEntry[];
  gatewayUrl: string;
  gatewayAdminToken?: string;
  /** Kubeconfig file for the Gateway API router (KUBECONFIG); unset: in-cluster configuration. */
  kubeconfig?: string;
  dataDir: string;
  /** The gateway process's own settings (src/gateway/main.ts). */
  gateway: GatewaySettings;
  /** Worker Versioning (WORKER_DEPLOYMENT_NAME, WORKER_BUILD_ID, WORKER_VERSIONING_BEHAVIOR); unset: an unversioned worker. */
  workerVersioning?: WorkerVersioningSettings;
  /** URL_ALLOW_LIST: the URLs a rollout may make the control plane call (src/spec/url-allow-list.ts); unset: any. */
  urlAllowList?: UrlAllowList;
  /** TEMPORAL_UI_WRITE_ACTIONS: the stack's dev-server UI may terminate, cancel, signal, reset, start… (default false: read-only). */
  temporalUiWriteActions: boolean;
  /** The worker's capacity (WORKER_MAX_CACHED_WORKFLOWS, …): see workerTuningSettings. */
  workerTuning: WorkerTuningSettings;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const gatewayPort = int(env, 'GATEWAY_PORT', 8080);
  return {
    temporalAddress: env.TEMPORAL_ADDRESS || `127.0.0.1:${int(env, 'TEMPORAL_PORT', 7233)}`,
    ...temporalSecuritySettings(env),
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TASK_QUEUE || 'model-canary',
    temporalUiUrl: (env.TEMPORAL_UI_URL || `http://127.0.0.1:${int(env, 'TEMPORAL_UI_PORT', 8233)}`).replace(/\/$/, ''),
    apiPort: int(env, 'API_PORT', 3000),
    apiHost: env.API_HOST || '127.0.0.1',
    apiToken: env.API_TOKEN || undefined,
    apiTokens: loadApiTokens(env),
    gatewayUrl: (env.GATEWAY_URL || `http://127.0.0.1:${gatewayPort}`).replace(/\/$/, ''),
    gatewayAdminToken: env.GATEWAY_ADMIN_TOKEN || undefined,
    kubeconfig: env.KUBECONFIG || undefined,
    dataDir: env.DATA_DIR || '.data',
    gateway: loadGatewaySettings(env),
    ...workerVersioningSettings(env),
    ...urlAllowListSetting(env),
    temporalUiWriteActions: bool(env, 'TEMPORAL_UI_WRITE_ACTIONS') ?? false,
    workerTuning: workerTuningSettings(env),
  };
}

/** URL_ALLOW_LIST, comma-separated URL patterns; unset or blank: every URL is allowed. A bad pattern is an error naming it. */
function urlAllowListSetting(env: NodeJS.ProcessEnv): Pick<Config, 'urlAllowList'> {
  const raw = env.URL_ALLOW_LIST;
  if (raw === undefined || raw.trim() === '') return {};
  return { urlAllowList: parseUrlAllowList(raw, 'URL_ALLOW_LIST') };
}

/** What the adapters (routers, metric sources) read of the settings. */
export function adapterSettings(config: Config): AdapterSettings {
  return {
    gatewayUrl: config.gatewayUrl,
    ...(config.gatewayAdminToken ? { gatewayAdminToken: config.gatewayAdminToken } : {}),
    ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
    ...(config.urlAllowList ? { urlAllowList: config.urlAllowList } : {}),
  };
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new Error(`${name} must be a port number (0-65535), got "${raw}"`);
  }
  return value;
}

/** Gateway settings; the limits are described in README.md ("Gateway limits"). */
export interface GatewaySettings {
  port: number;
  host: string;
  upstreamTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  upstreamConnections: number;
  upstreamMaxPending: number;
  upstreamMaxUploads: number;
  metricsRetentionMs: number;
  bodyCopyBytes: number;
  mirrorMaxInFlight: number;
  evaluatorMaxInFlight: number;
  evaluatorTimeoutMs: number;
}

function loadGatewaySettings(env: NodeJS.ProcessEnv): GatewaySettings {
  const d = GATEWAY_DEFAULTS;
  const ms = (name: string, fallback: number, min = 0) => bounded(env, name, fallback, min, MAX_TIMER_MS);
  const count = (name: string, fallback: number, min: number) => bounded(env, name, fallback, min, 1_000_000);
  const settings: GatewaySettings = {
    port: int(env, 'GATEWAY_PORT', 8080),
    host: env.GATEWAY_HOST || '127.0.0.1',
    upstreamTimeoutMs: ms('GATEWAY_UPSTREAM_TIMEOUT_MS', d.upstreamTimeoutMs),
    headersTimeoutMs: ms('GATEWAY_HEADERS_TIMEOUT_MS', d.headersTimeoutMs, 1),
    requestTimeoutMs: ms('GATEWAY_REQUEST_TIMEOUT_MS', d.requestTimeoutMs),
    bodyIdleTimeoutMs: ms('GATEWAY_BODY_IDLE_TIMEOUT_MS', d.bodyIdleTimeoutMs),
    upstreamConnections: count('GATEWAY_UPSTREAM_CONNECTIONS', d.upstreamConnections, 1),
    upstreamMaxPending: count('GATEWAY_UPSTREAM_MAX_PENDING', d.upstreamMaxPending, 0),
    upstreamMaxUploads: count('GATEWAY_UPSTREAM_MAX_UPLOADS', d.upstreamMaxUploads, 1),
    metricsRetentionMs: ms('GATEWAY_METRICS_RETENTION_MS', d.metricsRetentionMs),
    bodyCopyBytes: count('GATEWAY_BODY_COPY_BYTES', d.bodyCopyBytes, 0),
    mirrorMaxInFlight: count('GATEWAY_MIRROR_MAX_IN_FLIGHT', d.mirrorMaxInFlight, 1),
    evaluatorMaxInFlight: count('GATEWAY_EVALUATOR_MAX_IN_FLIGHT', d.evaluatorMaxInFlight, 1),
    evaluatorTimeoutMs: ms('GATEWAY_EVALUATOR_TIMEOUT_MS', d.evaluatorTimeoutMs, 1),
  };
  // Node refuses a headers timeout longer than the whole-request timeout.
  if (settings.requestTimeoutMs > 0 && settings.headersTimeoutMs > settings.requestTimeoutMs) {
    throw new Error(
      `GATEWAY_HEADERS_TIMEOUT_MS (${settings.headersTimeoutMs}) must not exceed GATEWAY_REQUEST_TIMEOUT_MS (${settings.requestTimeoutMs})`,
    );
  }
  return settings;
}

function bounded(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

// ---- API tokens and their roles ------------------------------------------------------------------

/** `viewer`: the GET routes; `operator`: those and every action (start, pause, resume, abort, promote, approve). */
export const API_ROLES = ['viewer', 'operator'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** A token as configured: who it is (recorded as `by` in the rollout's events), its role, and the SHA-256 of the token (hex). */
export interface ApiTokenEntry {
  name: string;
  role: ApiRole;
  sha256: string;
}

/** Token names: what the audit records (`by`), so short and plain. */
export const API_TOKEN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
const NAME_RULE = '1 to 64 letters, digits and . _ @ + - (starting with a letter or digit)';
/** The name API_TOKEN's token is recorded under. */
export const LEGACY_TOKEN_NAME = 'api-token';

/** The hex SHA-256 of a token: what an API_TOKENS(_FILE) entry holds instead of the token. */
export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token (256 bits) and its entry: `model-canary token create`. */
export function createApiToken(name: string, role: ApiRole): { token: string; entry: ApiTokenEntry } {
  if (!API_TOKEN_NAME_PATTERN.test(name)) throw new Error(`token name "${name}" is not valid: it must be ${NAME_RULE}`);
  if (!(API_ROLES as readonly string[]).includes(role)) throw new Error(`role "${role}" is not valid: it must be one of ${API_ROLES.join(', ')}`);
  const token = `mct_${randomBytes(32).toString('base64url')}`;
  return { token, entry: { name, role, sha256: hashApiToken(token) } };
}

/**
 * The API's tokens: API_TOKENS_FILE (a YAML or JSON file) or API_TOKENS (JSON inline), each a
 * list of `{name, role, sha256}`; plus API_TOKEN, an operator named "api-token". Every problem
 * is an error naming the variable (and file) and the entry.
 */
export function loadApiTokens(env: NodeJS.ProcessEnv): ApiTokenEntry[] {
  const file = env.API_TOKENS_FILE?.trim() || undefined;
  const inline = env.API_TOKENS?.trim() || undefined;
  if (file && inline) throw new Error('API_TOKENS_FILE and API_TOKENS are both set: set one of them (the file, or the same list inline as JSON)');
  let entries: ApiTokenEntry[] = [];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory' : (err as Error).message;
      throw new Error(`API_TOKENS_FILE: cannot read "${file}" (${why})`);
    }
    let parsed: unknown;
    try {
      // YAML is a superset of JSON: one parser reads both.
      parsed = parseYaml(text);
    } catch (err) {
      throw new Error(`API_TOKENS_FILE "${file}" is neither YAML nor JSON: ${(err as Error).message.split('\n')[0]}`);
    }
    entries = tokenEntries(`API_TOKENS_FILE "${file}"`, parsed);
  } else if (inline) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(inline);
    } catch (err) {
      throw new Error(`API_TOKENS is not valid JSON (${(err as Error).message}); it must be a list such as [{"name":"alice","role":"operator","sha256":"<hex>"}]`);
    }
    entries = tokenEntries('API_TOKENS', parsed);
  }
  const legacy = env.API_TOKEN || undefined;
  if (legacy) {
    const clash = entries.find((e) => e.name === LEGACY_TOKEN_NAME);
    if (clash) throw new Error(`API_TOKEN is recorded as "${LEGACY_TOKEN_NAME}", a name ${file ? 'API_TOKENS_FILE' : 'API_TOKENS'} also has: rename that entry, or unset API_TOKEN`);
    entries = [...entries, { name: LEGACY_TOKEN_NAME, role: 'operator', sha256: hashApiToken(legacy) }];
  }
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.sha256)) {
      const first = entries.find((x) => x.sha256 === e.sha256)!;
      throw new Error(`API tokens "${first.name}" and "${e.name}" have the same sha256: each token must be different (create one with \`model-canary token create\`)`);
    }
    seen.add(e.sha256);
  }
  return entries;
}

function tokenEntries(source: string, parsed: unknown): ApiTokenEntry[] {
  const example = '[{name: alice, role: operator, sha256: <hex SHA-256 of the token>}] (`model-canary token create` prints one)';
  if (!Array.isArray(parsed)) throw new Error(`${source} must be a list of tokens such as ${example}`);
  if (parsed.length === 0) throw new Error(`${source} lists no token: the API would be open to anyone; add one, or unset the variable`);
  const names = new Set<string>();
  return parsed.map((raw: unknown, i) => {
    const where = (name?: unknown) => `${source}: entry ${i + 1}${typeof name === 'string' && name ? ` ("${name}")` : ''}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where()} must be an object {name, role, sha256}`);
    const { name, role, sha256, ...rest } = raw as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) {
      const hint = unknown.includes('token') ? ' (never put the token itself in the list: its sha256 only)' : '';
      throw new Error(`${where(name)} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}${hint}; expected name, role, sha256`);
    }
    if (typeof name !== 'string' || !API_TOKEN_NAME_PATTERN.test(name)) throw new Error(`${where(name)}: name must be ${NAME_RULE}, got ${JSON.stringify(name ?? null)}`);
    if (names.has(name)) throw new Error(`${where(name)}: name "${name}" is listed twice; each token needs its own name (it is what the audit records)`);
    names.add(name);
    if (typeof role !== 'string' || !(API_ROLES as readonly string[]).includes(role)) {
      throw new Error(`${where(name)}: role must be one of ${API_ROLES.join(', ')}, got ${JSON.stringify(role ?? null)}`);
    }
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) {
      throw new Error(`${where(name)}: sha256 must be the hex SHA-256 of the token (64 hex digits), got ${JSON.stringify(typeof sha256 === 'string' ? sha256.slice(0, 80) : (sha256 ?? null))}`);
    }
    return { name, role: role as ApiRole, sha256: sha256.toLowerCase() };
  });
}

// ---- Connecting to a Temporal cluster: TLS, mTLS, API key ----------------------------------------

/** Where the TLS material is (read by temporalConnectionOptions, at each entry point's startup). */
export interface TemporalTlsSettings {
  /** TEMPORAL_TLS_CA: PEM file of the CA that signed the server's certificate; unset: the system's CAs. */
  caFile?: string;
  /** TEMPORAL_TLS_CERT + TEMPORAL_TLS_KEY: the client certificate and its key (PEM), for mTLS. */
  certFile?: string;
  keyFile?: string;
  /** TEMPORAL_TLS_SERVER_NAME: the name (SNI) the server's certificate is checked against; unset: the address's host. */
  serverName?: string;
}

/**
 * TEMPORAL_TLS (true/false, 1/0, on/off, yes/no) turns TLS on or off; unset, TLS is on as soon as
 * any TEMPORAL_TLS_* variable or TEMPORAL_API_KEY is set (Temporal Cloud takes API keys over TLS
 * only). TEMPORAL_TLS=false with an API key sends the key in plaintext (a TLS-terminating proxy on
 * the same host, a test server); TEMPORAL_TLS=false with a TEMPORAL_TLS_* variable is an error.
 */
function temporalSecuritySettings(env: NodeJS.ProcessEnv): Pick<Config, 'temporalTls' | 'temporalApiKey'> {
  const value = (name: string) => {
    const raw = env[name]?.trim();
    return raw ? raw : undefined;
  };
  const flag = bool(env, 'TEMPORAL_TLS');
  const tls: TemporalTlsSettings = {};
  const given: string[] = [];
  for (const [key, name] of [['caFile', 'TEMPORAL_TLS_CA'], ['certFile', 'TEMPORAL_TLS_CERT'], ['keyFile', 'TEMPORAL_TLS_KEY'], ['serverName', 'TEMPORAL_TLS_SERVER_NAME']] as const) {
    const v = value(name);
    if (v === undefined) continue;
    tls[key] = v;
    given.push(name);
  }
  if (flag === false && given.length > 0) {
    throw new Error(`TEMPORAL_TLS is false but ${given.join(', ')} ${given.length > 1 ? 'are' : 'is'} set: unset ${given.length > 1 ? 'them' : 'it'} or TEMPORAL_TLS`);
  }
  if (tls.certFile && !tls.keyFile) {
    throw new Error('TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: mTLS needs the client certificate and its private key (set both, or neither)');
  }
  if (tls.keyFile && !tls.certFile) {
    throw new Error('TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not: mTLS needs the client certificate and its private key (set both, or neither)');
  }
  const apiKey = value('TEMPORAL_API_KEY');
  const on = flag ?? (given.length > 0 || apiKey !== undefined);
  return { ...(on ? { temporalTls: tls } : {}), ...(apiKey !== undefined ? { temporalApiKey: apiKey } : {}) };
}

function bool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return undefined;
  if (['1', 'true', 'on', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'off', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be true or false (also 1/0, on/off, yes/no), got "${env[name]}"`);
}

/**
 * Options for both `NativeConnection.connect` (@temporalio/worker) and `Connection.connect`
 * (@temporalio/client) — the SDK's own names: `tls: { serverRootCACertificate, clientCertPair:
 * { crt, key }, serverNameOverride }` and `apiKey`. `tls: false` is explicit so that an API key
 * with TEMPORAL_TLS=false stays plaintext (the SDK would otherwise turn TLS on for it).
 */
export interface TemporalConnectionOptions {
  address: string;
  tls: false | { serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer }; serverNameOverride?: string };
  apiKey?: string;
}

/**
 * The connection options for `config`, reading the TLS files now (call it at startup): throws an
 * error naming the variable when a file is missing, unreadable or not PEM.
 */
export function temporalConnectionOptions(config: Pick<Config, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>): TemporalConnectionOptions {
  const t = config.temporalTls;
  const apiKey = config.temporalApiKey ? { apiKey: config.temporalApiKey } : {};
  if (!t) return { address: config.temporalAddress, tls: false, ...apiKey };
  return {
    address: config.temporalAddress,
    tls: {
      ...(t.caFile ? { serverRootCACertificate: pemFile('TEMPORAL_TLS_CA', t.caFile, 'CERTIFICATE') } : {}),
      ...(t.certFile && t.keyFile
        ? { clientCertPair: { crt: pemFile('TEMPORAL_TLS_CERT', t.certFile, 'CERTIFICATE'), key: pemFile('TEMPORAL_TLS_KEY', t.keyFile, 'PRIVATE KEY') } }
        : {}),
      ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
    },
    ...apiKey,
  };
}

/** What a log line may say about the connection (no secrets): e.g. `mTLS, API key`. */
export function describeTemporalSecurity(config: Pick<Config, 'temporalTls' | 'temporalApiKey'>): string {
  const t = config.temporalTls;
  const parts = [t ? (t.certFile ? 'mTLS' : 'TLS') : 'plaintext'];
  if (t?.serverName) parts.push(`server name ${t.serverName}`);
  if (config.temporalApiKey) parts.push('API key');
  return parts.join(', ');
}

function pemFile(name: string, path: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory' : (err as Error).message;
    throw new Error(`${name}: cannot read "${path}" (${why})`);
  }
  // "-----BEGIN CERTIFICATE-----"; keys: "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY".
  const pattern = label === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;
  if (!pattern.test(content.toString('latin1'))) {
    throw new Error(`${name}: "${path}" is not a PEM ${label === 'CERTIFICATE' ? 'certificate' : 'private key'} (no "-----BEGIN ${label}-----" block)`);
  }
  return content;
}

// ---- Worker Versioning: which build a worker is, and how rollouts move between builds -----------

/** How a rollout started on one build moves to another (the SDK's `VersioningBehavior`). */
export const WORKER_VERSIONING_BEHAVIORS = ['PINNED', 'AUTO_UPGRADE'] as const;
export type WorkerVersioningBehavior = (typeof WORKER_VERSIONING_BEHAVIORS)[number];

/** A versioned worker: its Worker Deployment Version (deployment name + build ID) and its rollouts' default behavior. */
export interface WorkerVersioningSettings {
  /** WORKER_DEPLOYMENT_NAME: the same for every release of this worker (e.g. `model-canary`). */
  deploymentName: string;
  /** WORKER_BUILD_ID: one per release (e.g. the image tag or git commit). */
  buildId: string;
  /**
   * WORKER_VERSIONING_BEHAVIOR: `PINNED` (default) — a rollout runs to its end on the build that
   * started it; `AUTO_UPGRADE` — it moves to the current build at its next workflow task (then
   * every change to the workflow must replay its histories, or branch with `patched()`).
   */
  defaultBehavior: WorkerVersioningBehavior;
}

/** Deployment names are the first half of a version's `deploymentName.buildId`: no dot in them. */
const DEPLOYMENT_NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_-]{0,254}$/;
const BUILD_ID_PATTERN = /^[A-Za-z0-9_.+-][A-Za-z0-9_.+-]{0,254}$/;

/**
 * WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID, both or neither; WORKER_VERSIONING_BEHAVIOR
 * (pinned or auto-upgrade, any case, `-` or `_`) only with them. Every problem names the variable.
 */
function workerVersioningSettings(env: NodeJS.ProcessEnv): Pick<Config, 'workerVersioning'> {
  const value = (name: string) => {
    const raw = env[name]?.trim();
    return raw ? raw : undefined;
  };
  const deploymentName = value('WORKER_DEPLOYMENT_NAME');
  const buildId = value('WORKER_BUILD_ID');
  const behavior = value('WORKER_VERSIONING_BEHAVIOR');
  if (deploymentName === undefined && buildId === undefined) {
    if (behavior !== undefined) {
      throw new Error('WORKER_VERSIONING_BEHAVIOR is set but WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID are not: it applies to a versioned worker only (set all three, or unset it)');
    }
    return {};
  }
  if (deploymentName === undefined || buildId === undefined) {
    const [given, missing] = deploymentName === undefined ? ['WORKER_BUILD_ID', 'WORKER_DEPLOYMENT_NAME'] : ['WORKER_DEPLOYMENT_NAME', 'WORKER_BUILD_ID'];
    throw new Error(`${given} is set but ${missing} is not: a versioned worker needs its deployment name and its build ID (set both, or neither)`);
  }
  if (!DEPLOYMENT_NAME_PATTERN.test(deploymentName)) {
    throw new Error(`WORKER_DEPLOYMENT_NAME must be 1 to 255 letters, digits, _ and - (no dot: a version is "<deployment name>.<build ID>"), got "${deploymentName}"`);
  }
  if (!BUILD_ID_PATTERN.test(buildId)) {
    throw new Error(`WORKER_BUILD_ID must be 1 to 255 letters, digits and _ . + - (e.g. a version or a git commit), got "${buildId}"`);
  }
  let defaultBehavior: WorkerVersioningBehavior = 'PINNED';
  if (behavior !== undefined) {
    const normalized = behavior.toUpperCase().replace(/-/g, '_');
    if (!(WORKER_VERSIONING_BEHAVIORS as readonly string[]).includes(normalized)) {
      throw new Error(`WORKER_VERSIONING_BEHAVIOR must be pinned or auto-upgrade (any case), got "${env.WORKER_VERSIONING_BEHAVIOR}"`);
    }
    defaultBehavior = normalized as WorkerVersioningBehavior;
  }
  return { workerVersioning: { deploymentName, buildId, defaultBehavior } };
}

// ---- Worker capacity: how many rollouts one worker keeps in memory and works on at once --------

/**
 * The worker's capacity settings (src/worker.ts passes them to Worker.create). Each rollout is a
 * long-running workflow that wakes every `analysis.interval`: a worker that must evict one from
 * its cache to make room replays its whole history at its next check, so the cache holds every
 * running rollout; `bench/scale/run.ts` (`npm run bench:scale`) measured the others.
 */
export interface WorkerTuningSettings {
  /** WORKER_MAX_CACHED_WORKFLOWS: rollouts kept in memory between their workflow tasks. */
  maxCachedWorkflows: number;
  /** WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: workflow tasks (activations) in flight at once. */
  maxConcurrentWorkflowTaskExecutions: number;
  /** WORKER_MAX_CONCURRENT_ACTIVITIES: activities (router and metric calls, notifications) in flight at once. */
  maxConcurrentActivityTaskExecutions: number;
  /** WORKER_WORKFLOW_TASK_POLLERS / WORKER_ACTIVITY_TASK_POLLERS: long polls kept open for each kind of task. */
  workflowTaskPollers: number;
  activityTaskPollers: number;
}

export const WORKER_TUNING_DEFAULTS: WorkerTuningSettings = {
  maxCachedWorkflows: 2_000,
  maxConcurrentWorkflowTaskExecutions: 40,
  maxConcurrentActivityTaskExecutions: 100,
  workflowTaskPollers: 10,
  activityTaskPollers: 10,
};

function workerTuningSettings(env: NodeJS.ProcessEnv): WorkerTuningSettings {
  const d = WORKER_TUNING_DEFAULTS;
  return {
    maxCachedWorkflows: bounded(env, 'WORKER_MAX_CACHED_WORKFLOWS', d.maxCachedWorkflows, 2, 1_000_000),
    maxConcurrentWorkflowTaskExecutions: bounded(env, 'WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', d.maxConcurrentWorkflowTaskExecutions, 2, 100_000),
    maxConcurrentActivityTaskExecutions: bounded(env, 'WORKER_MAX_CONCURRENT_ACTIVITIES', d.maxConcurrentActivityTaskExecutions, 1, 100_000),
    workflowTaskPollers: bounded(env, 'WORKER_WORKFLOW_TASK_POLLERS', d.workflowTaskPollers, 2, 1_000),
    activityTaskPollers: bounded(env, 'WORKER_ACTIVITY_TASK_POLLERS', d.activityTaskPollers, 1, 1_000),
  };
}
