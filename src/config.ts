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
