/**
 * A real Prometheus (Debian's `prometheus`, /usr/bin/prometheus) for tests: its own config and
 * TSDB in a temp dir, on a free port of 127.0.0.1, scraping the given targets. Installed by
 * scripts/install-debian.sh when missing (a test installs what it needs; it never skips).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import { eventually, freePorts } from './http';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

export interface PrometheusOptions {
  /** `host:port` of each target to scrape (`/metrics`). */
  targets: string[];
  scrapeIntervalSeconds?: number;
}

export interface RunningPrometheus {
  url: string;
  /** What it printed (for failure messages). */
  output: string[];
  /** Kills it and removes its config and data. */
  stop(): Promise<void>;
}

/** Installs Prometheus from Debian (scripts/install-debian.sh) if the binary is not there. */
export function ensurePrometheus(): void {
  if (existsSync(PROMETHEUS_BIN)) return;
  execFileSync('bash', [join(PROJECT_ROOT, 'scripts/install-debian.sh')], { stdio: 'inherit' });
  if (!existsSync(PROMETHEUS_BIN)) throw new Error(`${PROMETHEUS_BIN} is still missing after scripts/install-debian.sh`);
}

/**
 * Starts Prometheus and resolves once it is ready and has scraped every target successfully
 * at least once (so a test's first window has data).
 */
export async function startPrometheus({ targets, scrapeIntervalSeconds = 1 }: PrometheusOptions): Promise<RunningPrometheus> {
  ensurePrometheus();
  const dir = await mkdtemp(join(tmpdir(), 'model-canary-prometheus-'));
  const [port] = await freePorts(1);
  const config = [
    'global:',
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    `  scrape_timeout: ${scrapeIntervalSeconds}s`,
    'scrape_configs:',
    '  - job_name: model-canary-test',
    '    static_configs:',
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!exited) child.kill('SIGKILL');
    await exit;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await eventually(
      async () => {
        if (exited) throw new Error('prometheus exited');
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      30_000,
      `Prometheus at ${url} to be ready`,
    );
    await eventually(
      async () => {
        const body = (await (await fetch(`${url}/api/v1/targets?state=active`)).json()) as {
          data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastError: string }> };
        };
        const up = body.data.activeTargets.filter((t) => t.health === 'up').length;
        return body.data.activeTargets.length === targets.length && up === targets.length ? true : undefined;
      },
      30_000,
      `Prometheus to scrape ${targets.join(', ')}`,
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- prometheus output ---\n${output.join('').slice(-3000)}`);
  }
  return { url, output, stop };
}

/** Waits until Prometheus has a sample of `selector` scraped after `afterMs` (so a window ending then has its data). */
export async function scrapedSince(url: string, selector: string, afterMs: number, timeoutMs = 10_000): Promise<void> {
  await eventually(
    async () => {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: `timestamp(${selector})` })}`);
      const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
      const latest = Math.min(...body.data.result.map((r) => Number(r.value[1]) * 1000));
      return body.data.result.length > 0 && latest > afterMs ? true : undefined;
    },
    timeoutMs,
    `a scrape of ${selector} after ${new Date(afterMs).toISOString()}`,
  );
}
