/**
 * The scale bench's data plane, in a process of its own (so that the worker's and the API's CPU
 * are theirs): two demo model servers (v1, v2) shared by every target, the real gateway
 * (startGateway) with a route `t0 … t{N-1}` → v1 for each target, and light traffic: SCALE_RATE
 * chat requests per second in all, sent round-robin over the targets, each from a random user key.
 *
 * Env: SCALE_TARGETS (N), SCALE_RATE (req/s in all), SCALE_DATA_DIR (the gateway's routes file).
 * Prints one line `ready {"gatewayUrl","v1","v2"}` once every route is in place; on `stats` in its
 * stdin it prints `stats {"sent","ok","failed"}`. Exits on SIGTERM / stdin closing.
 */
import pino from 'pino';
import { Agent, request } from 'undici';
import { startModelServer } from '../../src/demo/model-server';
import { startGateway } from '../../src/gateway/server';

const TARGETS = Number(process.env.SCALE_TARGETS ?? 100);
const RATE = Number(process.env.SCALE_RATE ?? 300);
const DATA_DIR = process.env.SCALE_DATA_DIR!;

export const targetName = (i: number) => `t${i}`;

async function main(): Promise<void> {
  const silent = pino({ level: 'silent' });
  const [v1, v2, gateway] = await Promise.all([
    startModelServer({ version: 'v1', latencyMs: 5, latencySpread: 0.2 }),
    startModelServer({ version: 'v2', latencyMs: 5, latencySpread: 0.2 }),
    startGateway({ port: 0, dataDir: DATA_DIR, logger: silent }),
  ]);
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  // Each PUT rewrites the routes file: a few at a time is enough.
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < TARGETS) {
        const target = targetName(next++);
        const res = await request(`${gateway.url}/admin/routes/${target}`, {
          method: 'PUT',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ versions: [{ name: 'v1', url: v1.url, weight: 100 }] }),
        });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`PUT route ${target}: ${res.statusCode}`);
      }
    }),
  );

  // Open-loop traffic, paced by a 10 ms tick: round-robin over the targets.
  const counts = { sent: 0, ok: 0, failed: 0 };
  const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
  let target = 0;
  const started = Date.now();
  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE);
    while (counts.sent < due) {
      counts.sent++;
      const t = targetName(target);
      target = (target + 1) % TARGETS;
      request(`${gateway.url}/${t}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', 'x-canary-key': `u${Math.floor(Math.random() * 1e6)}` },
        body,
      })
        .then(async (res) => {
          await res.body.text();
          if (res.statusCode === 200) counts.ok++;
          else counts.failed++;
        })
        .catch(() => counts.failed++);
    }
  }, 10);

  console.log(`ready ${JSON.stringify({ gatewayUrl: gateway.url, v1: v1.url, v2: v2.url })}`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    await Promise.race([Promise.all([gateway.close(500), v1.close(), v2.close(), agent.close()]), new Promise((r) => setTimeout(r, 3_000))]);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.stdin.on('data', (chunk: Buffer) => {
    if (chunk.toString().includes('stats')) console.log(`stats ${JSON.stringify(counts)}`);
  });
  process.stdin.on('end', () => void stop());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
