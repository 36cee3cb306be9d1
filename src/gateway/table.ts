/**
 * The live routing table: each route compiled for the hot path (bucket ranges, one undici Pool
 * per upstream origin, the metric handles of each version). Pools are shared between routes
 * that name the same origin and closed gracefully once no route uses them. A version that
 * leaves its route hands its stats back to the metrics, which drop them after their retention.
 */
import { Pool } from 'undici';
import { bucketRanges, type BucketRange } from './bucketing';
import { GATEWAY_DEFAULTS } from './defaults';
import type { GatewayMetrics, VersionStats } from './metrics';
import type { CompiledMirror } from './mirror';
import { VERSION_HEADER } from './proxy';
import type { Route } from './routes';

/**
 * One upstream origin: its pool, and the load the gateway has put on it. undici queues without
 * bound, so the proxy keeps its own counts and refuses (503) beyond the limits rather than let
 * requests wait behind a full pool (reading `pool.stats` would walk every connection per request).
 */
export class Upstream {
  /** Requests dispatched to the pool and not yet finished (running or waiting for a connection). */
  active = 0;
  /** Of those, the ones whose request body is still arriving from the client. */
  uploading = 0;

  constructor(
    readonly pool: Pool,
    /** connections + most waiting. */
    readonly maxActive: number,
    readonly maxUploading: number,
  ) {}
}

export interface CompiledVersion {
  name: string;
  url: string;
  origin: string;
  /** The URL's path without a trailing '/', prefixed to the proxied path ('' for the root). */
  basePath: string;
  upstream: Upstream;
  stats: VersionStats;
  /** Headers of the gateway's own error answers for this version (made once, not per error). */
  errorHeaders: Readonly<Record<string, string>>;
}

export interface CompiledRoute {
  target: string;
  salt: string;
  ranges: BucketRange[];
  versions: CompiledVersion[];
  /** Requests whose `header` is not one of `values` go to versions[othersIndex], unsplit. */
  match?: { header: string; values: ReadonlySet<string>; othersIndex: number };
  mirror?: CompiledMirror;
}

export interface PoolOptions {
  /** Most connections kept to one upstream origin; default 256. */
  connections?: number;
  /** Most requests waiting for a connection to one origin; beyond, 503 upstream_overloaded at once. Default 256. */
  maxPending?: number;
  /**
   * Most requests to one origin still receiving their body from the client (bodies larger than
   * the gateway holds back); beyond, 503 at once, so that slow uploads cannot take every
   * connection. Default 64.
   */
  maxUploads?: number;
  keepAliveTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export class RouteTable {
  private readonly compiled = new Map<string, CompiledRoute>();
  private readonly upstreams = new Map<string, Upstream>();

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
        upstream: this.upstream(url.origin),
        stats: this.metrics.stats(target, version.name),
        errorHeaders: { [VERSION_HEADER]: version.name },
      };
    });
    const previous = this.compiled.get(target);
    const indexOf = (name: string) => versions.findIndex((v) => v.name === name); // validated: present
    const compiled: CompiledRoute = {
      target,
      salt: route.salt,
      ranges: bucketRanges(route.versions.map((v) => v.weight)),
      versions,
    };
    if (route.match) compiled.match = { header: route.match.header, values: new Set(route.match.values), othersIndex: indexOf(route.match.others) };
    if (route.mirror) {
      const { from, to, percent, evaluator } = route.mirror;
      compiled.mirror = { fromIndex: indexOf(from), to: versions[indexOf(to)]!, percent, shadow: this.metrics.shadow(target) };
      if (evaluator) compiled.mirror.evaluator = { url: evaluator.url, sample: evaluator.sample };
    }
    this.compiled.set(target, compiled);
    if (previous) this.release(previous.versions.filter((old) => !versions.some((v) => v.stats === old.stats)));
    this.closeUnusedPools();
  }

  delete(target: string): void {
    const previous = this.compiled.get(target);
    this.compiled.delete(target);
    if (previous) this.release(previous.versions);
    this.closeUnusedPools();
  }

  /** Closes every pool: in-flight requests may finish within `graceMs`, then they are cut. */
  async close(graceMs = 5_000): Promise<void> {
    const upstreams = [...this.upstreams.values()];
    this.upstreams.clear();
    this.compiled.clear();
    await Promise.all(upstreams.map((upstream) => closePool(upstream.pool, graceMs)));
  }

  /** Versions no longer in their route: their stats are released to the metrics' retention. */
  private release(versions: readonly CompiledVersion[]): void {
    for (const version of versions) this.metrics.release(version.stats);
    this.metrics.sweep();
  }

  private upstream(origin: string): Upstream {
    let upstream = this.upstreams.get(origin);
    if (!upstream) {
      const o = this.poolOptions;
      const connections = o.connections ?? GATEWAY_DEFAULTS.upstreamConnections;
      const pool = new Pool(origin, {
        connections,
        pipelining: 1,
        keepAliveTimeout: o.keepAliveTimeoutMs ?? 30_000,
        connect: { timeout: o.connectTimeoutMs ?? 10_000 },
      });
      upstream = new Upstream(
        pool,
        connections + (o.maxPending ?? GATEWAY_DEFAULTS.upstreamMaxPending),
        o.maxUploads ?? GATEWAY_DEFAULTS.upstreamMaxUploads,
      );
      this.upstreams.set(origin, upstream);
    }
    return upstream;
  }

  private closeUnusedPools(): void {
    const used = new Set<string>();
    for (const route of this.compiled.values()) for (const version of route.versions) used.add(version.origin);
    for (const [origin, upstream] of this.upstreams) {
      if (!used.has(origin)) {
        this.upstreams.delete(origin);
        void closePool(upstream.pool, 60_000);
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
