/**
 * The live routing table: each route compiled for the hot path (bucket ranges, one undici Pool
 * per upstream origin, the metric handles of each version). Pools are shared between routes
 * that name the same origin and closed gracefully once no route uses them.
 */
import { Pool } from 'undici';
import { bucketRanges, type BucketRange } from './bucketing';
import type { GatewayMetrics, VersionStats } from './metrics';
import type { Route } from './routes';

export interface CompiledVersion {
  name: string;
  url: string;
  origin: string;
  /** The URL's path without a trailing '/', prefixed to the proxied path ('' for the root). */
  basePath: string;
  pool: Pool;
  stats: VersionStats;
}

export interface CompiledRoute {
  target: string;
  salt: string;
  ranges: BucketRange[];
  versions: CompiledVersion[];
}

export interface PoolOptions {
  /** Most connections kept to one upstream origin. */
  connections?: number;
  keepAliveTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export class RouteTable {
  private readonly compiled = new Map<string, CompiledRoute>();
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly poolOptions: PoolOptions = {},
  ) {}

  get(target: string): CompiledRoute | undefined {
    return this.compiled.get(target);
  }

  /** Installs (or replaces) a target's route. Every version gets its metric series at once. */
  set(target: string, route: Route): void {
    const versions = route.versions.map((version): CompiledVersion => {
      const url = new URL(version.url);
      return {
        name: version.name,
        url: version.url,
        origin: url.origin,
        basePath: url.pathname.replace(/\/+$/, ''),
        pool: this.pool(url.origin),
        stats: this.metrics.stats(target, version.name),
      };
    });
    this.compiled.set(target, {
      target,
      salt: route.salt,
      ranges: bucketRanges(route.versions.map((v) => v.weight)),
      versions,
    });
    this.closeUnusedPools();
  }

  delete(target: string): void {
    this.compiled.delete(target);
    this.closeUnusedPools();
  }

  /** Closes every pool: in-flight requests may finish within `graceMs`, then they are cut. */
  async close(graceMs = 5_000): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    this.compiled.clear();
    await Promise.all(pools.map((pool) => closePool(pool, graceMs)));
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.poolOptions.connections ?? 256,
        pipelining: 1,
        keepAliveTimeout: this.poolOptions.keepAliveTimeoutMs ?? 30_000,
        connect: { timeout: this.poolOptions.connectTimeoutMs ?? 10_000 },
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  private closeUnusedPools(): void {
    const used = new Set<string>();
    for (const route of this.compiled.values()) for (const version of route.versions) used.add(version.origin);
    for (const [origin, pool] of this.pools) {
      if (!used.has(origin)) {
        this.pools.delete(origin);
        void closePool(pool, 60_000);
      }
    }
  }
}

async function closePool(pool: Pool, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
    timer.unref();
  });
  try {
    const result = await Promise.race([pool.close().then(() => 'closed' as const), grace]);
    if (result === 'timeout') await pool.destroy();
  } catch {
    // already closed or destroyed
  } finally {
    clearTimeout(timer);
  }
}
