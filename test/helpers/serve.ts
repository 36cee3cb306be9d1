/** For tests that spawn the whole stack (scripts/serve.ts) as a child process. */

/** The ports the stack listens on. */
export interface ServePorts {
  temporal: number;
  ui: number;
  api: number;
  gateway: number;
}

/** Inherited settings that would point the stack at something other than what the test started, or change how it is reached. */
const INHERITED_SETTINGS = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CA',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_API_KEY',
  'TEMPORAL_UI_URL',
  'API_TOKEN',
  'GATEWAY_URL',
  'GATEWAY_ADMIN_TOKEN',
  'TASK_QUEUE',
  'TEMPORAL_NAMESPACE',
  'API_HOST',
  'TEMPORAL_CLI_PATH',
];

/** The environment for scripts/serve.ts on `ports` and `dataDir`: this process's, without INHERITED_SETTINGS, quiet logs, then `extra`. */
export function serveEnv(ports: ServePorts, dataDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    API_PORT: String(ports.api),
    GATEWAY_PORT: String(ports.gateway),
    LOG_LEVEL: 'warn',
  };
  for (const name of INHERITED_SETTINGS) delete env[name];
  return Object.assign(env, extra);
}
