/**
 * Demo model servers as processes of their own (src/demo/model-main.ts), each with its own CPU
 * and memory: what a metric source that reads per-process resource figures needs.
 */
import { freePorts } from './http';
import { spawnTs, waitForOutput, type Proc } from './e2e';

export interface ModelProcess {
  name: string;
  url: string;
  /** host:port, as a Prometheus target. */
  host: string;
  proc: Proc;
}

/** Starts one per entry (name → MODEL_* settings besides the port, e.g. { MODEL_ERROR_RATE: '0.3' }). */
export async function startModelProcesses(models: Record<string, NodeJS.ProcessEnv>): Promise<Record<string, ModelProcess>> {
  const names = Object.keys(models);
  const ports = await freePorts(names.length);
  const started = await Promise.all(
    names.map(async (name, i) => {
      const port = ports[i]!;
      const proc = spawnTs(`model ${name}`, 'src/demo/model-main.ts', { MODEL_VERSION: name, MODEL_PORT: String(port), MODEL_HOST: '127.0.0.1', ...models[name] });
      await waitForOutput(proc, 'demo model listening', 60_000);
      return { name, url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, proc };
    }),
  );
  return Object.fromEntries(started.map((m) => [m.name, m]));
}

export async function stopModelProcesses(models: Record<string, ModelProcess> | undefined): Promise<void> {
  await Promise.all(Object.values(models ?? {}).map((m) => m.proc.stop(5_000)));
}
