/**
 * Adapter kinds: what a spec's `routing` or `metrics` names by `kind`, with its options' schema
 * (validated at start: a 400 names the field) and how to build it. Each implementation is one
 * file (./routers/*.ts, ./metric-sources/*.ts) and one line in its registry (the index.ts beside it).
 */
import type { z } from 'zod';

/** Worker-side settings an adapter may need beyond its options (src/config.ts reads them). */
export interface AdapterSettings {
  gatewayUrl: string;
  gatewayAdminToken?: string;
  /** A kubeconfig file (KUBECONFIG); undefined: in-cluster configuration. */
  kubeconfig?: string;
}

/** `z.strictObject({ kind: z.literal(kind), ...options })`. */
export type OptionsSchema = z.ZodObject<any, any>;

export interface AdapterKind<Schema extends OptionsSchema, Adapter> {
  kind: z.output<Schema>['kind'];
  options: Schema;
  /**
   * Routers: `required`, the spec's baseline and candidate give the `url` traffic goes to;
   * `unused`, the router knows where versions serve (its options name them) and a `url` is refused.
   */
  versionUrls?: 'required' | 'unused';
  /** What the options need of the spec's versions (e.g. a backend for each), as issues under the options' path. */
  checkVersions?(options: z.output<Schema>, versions: readonly string[]): Array<{ path: Array<string | number>; message: string }>;
  /** For a metric source: the routing kinds whose traffic it can see (undefined: any). */
  sees?: readonly string[];
  create(options: z.output<Schema>, settings: AdapterSettings): Adapter;
}

/** An adapter kind, its options' type inferred from its schema. */
export function defineAdapter<Schema extends OptionsSchema, Adapter>(kind: AdapterKind<Schema, Adapter>): AdapterKind<Schema, Adapter> {
  return kind;
}

/**
 * Builds adapters from a registry, one per distinct options (a worker runs many rollouts; each
 * adapter instance may hold connections).
 */
export function adapterCache<Options extends { kind: string }, Adapter>(
  registry: readonly AdapterKind<OptionsSchema, Adapter>[],
  settings: AdapterSettings,
): (options: Options) => Adapter {
  const built = new Map<string, Adapter>();
  return (options) => {
    const key = JSON.stringify(options);
    let adapter = built.get(key);
    if (!adapter) {
      const kind = registry.find((k) => k.kind === options.kind);
      if (!kind) throw new Error(`no adapter of kind "${options.kind}" (known: ${registry.map((k) => k.kind).join(', ')})`);
      adapter = kind.create(kind.options.parse(options), settings);
      built.set(key, adapter);
    }
    return adapter;
  };
}
