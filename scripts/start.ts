/**
 * `npm start`: the stack (scripts/stack.ts, as `npm run serve`) plus the demo show
 * (src/demo/show.ts): demo models v1, v2 (healthy), v3 (~8% errors) and v4 (2× time to first
 * token), traffic through the gateway, a rollout v1 → v2 that promotes, a rollout v2 → v3 that
 * rolls back by itself on its errors and, on streamed traffic, a rollout v2 → v4 that rolls back
 * by itself on its time to first token, with live progress. Then everything keeps running until
 * Ctrl-C, which stops it all.
 *
 * Env: as `npm run serve` (DATA_DIR, TEMPORAL_PORT, TEMPORAL_UI_PORT, API_PORT, GATEWAY_PORT, ...),
 * plus DEMO_MODEL_PORTS (v1,v2,v3,v4 ports; default 9001,9002,9003,9004; 0 = a free port; a busy
 * port falls back to a free one), DEMO_RATE (requests per second, default 30), DEMO_SCALE
 * (multiplies bakes and check intervals; default 1 ≈ two minutes, 0.3 ≈ 50 s).
 */
import { runShow, type Show } from '../src/demo/show';
import { startStack } from './stack';

function numberFrom(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

function modelPorts(): [number, number, number, number] {
  const raw = process.env.DEMO_MODEL_PORTS;
  if (!raw) return [9001, 9002, 9003, 9004];
  const ports = raw.split(',').map((p) => Number(p.trim()));
  if (ports.length !== 4 || ports.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) {
    throw new Error(`DEMO_MODEL_PORTS must be four ports (v1,v2,v3,v4) such as 9001,9002,9003,9004 (0 = free port), got "${raw}"`);
  }
  return ports as [number, number, number, number];
}

function main(): void {
  const rate = numberFrom('DEMO_RATE', 30);
  const scale = numberFrom('DEMO_SCALE', 1);
  const ports = modelPorts();
  // The show's lines are the point: children say only what goes wrong (LOG_LEVEL=info to see all).
  const env = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL || 'warn' };
  const stack = startStack({ name: 'start', env });
  let show: Show | undefined;
  let quitting = false;
  const stopAll = async (reason: string, code: number) => {
    quitting = true;
    await show?.stop();
    process.exit(await stack.stop(reason, code));
  };
  process.on('SIGINT', () => void stopAll('SIGINT', 0));
  process.on('SIGTERM', () => void stopAll('SIGTERM', 0));
  // The terminal went away: the stack's dev server runs in a process group of its own and would not hear it.
  process.on('SIGHUP', () => void stopAll('SIGHUP', 0));
  // The stack gave up (a child could not start during boot) and stopped the others: stop the show
  // and leave with its code. (A child that dies later is restarted by the stack; the show goes on.)
  void stack.exited.then(async (code) => {
    quitting = true;
    await show?.stop();
    process.exit(code);
  });

  stack.ready.then(
    () => {
      if (stack.stopping()) return;
      stack.log(`ready\n${stack.readyLines().map((l) => `  ${l}`).join('\n')}`);
      const { config } = stack;
      show = runShow({
        apiUrl: stack.apiUrl,
        apiToken: config.apiToken,
        gatewayUrl: stack.gatewayUrl ?? config.gatewayUrl,
        gatewayAdminToken: config.gatewayAdminToken,
        temporalUiUrl: config.temporalUiUrl,
        namespace: config.namespace,
        rate,
        scale,
        modelPorts: ports,
      });
      show.done.then(
        () => stack.log('demo done; Ctrl-C to stop'),
        (err: unknown) => {
          if (quitting || stack.stopping()) return;
          stack.log(`demo failed: ${err instanceof Error ? err.message : String(err)}; the stack keeps running (Ctrl-C to stop)`);
        },
      );
    },
    () => undefined, // the stack logged why and is stopping; `exited` ends the process
  );
}

try {
  main();
} catch (err) {
  console.error(err);
  process.exit(1);
}
