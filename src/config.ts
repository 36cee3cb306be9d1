import { GATEWAY_DEFAULTS, MAX_TIMER_MS } from './gateway/defaults';

/** Settings read from the environment, with the defaults design.md promises. */
export interface Config {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string;
  apiPort: number;
  apiHost: string;
  apiToken?: string;
  gatewayUrl: string;
  gatewayAdminToken?: string;
  dataDir: string;
  /** The gateway process's own settings (src/gateway/main.ts). */
  gateway: GatewaySettings;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const gatewayPort = int(env, 'GATEWAY_PORT', 8080);
  return {
    temporalAddress: env.TEMPORAL_ADDRESS || `127.0.0.1:${int(env, 'TEMPORAL_PORT', 7233)}`,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TASK_QUEUE || 'model-canary',
    temporalUiUrl: (env.TEMPORAL_UI_URL || `http://127.0.0.1:${int(env, 'TEMPORAL_UI_PORT', 8233)}`).replace(/\/$/, ''),
    apiPort: int(env, 'API_PORT', 3000),
    apiHost: env.API_HOST || '127.0.0.1',
    apiToken: env.API_TOKEN || undefined,
    gatewayUrl: (env.GATEWAY_URL || `http://127.0.0.1:${gatewayPort}`).replace(/\/$/, ''),
    gatewayAdminToken: env.GATEWAY_ADMIN_TOKEN || undefined,
    dataDir: env.DATA_DIR || '.data',
    gateway: loadGatewaySettings(env),
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
