/**
 * The gateway's limits and their defaults, in one place: `startGateway` uses them for options
 * left out, and src/config.ts for environment variables left unset. Pure constants (config.ts
 * imports this, so nothing heavy may be imported here).
 */
export const GATEWAY_DEFAULTS = {
  /** Longest wait for an upstream's response headers, and longest silence inside its body. */
  upstreamTimeoutMs: 60_000,
  /** Longest time a client may take to send a request's headers. */
  headersTimeoutMs: 10_000,
  /** Longest time a client may take to send a whole request, headers and body (0: no limit). Responses are not limited. */
  requestTimeoutMs: 300_000,
  /** Longest silence inside a request body before the gateway gives up on it (0: no limit). */
  bodyIdleTimeoutMs: 15_000,
  /** Most connections to one upstream origin. */
  upstreamConnections: 256,
  /** Most requests waiting for a free connection to one upstream origin; beyond, 503 at once. */
  upstreamMaxPending: 256,
  /** Most requests to one upstream origin whose body is still arriving from the client; beyond, 503 at once. */
  upstreamMaxUploads: 64,
  /** A request body is held back (not sent upstream) until it is complete or this large. */
  bodyBufferBytes: 64 * 1024,
  /** How long the counters of a version that left its route stay readable before they are dropped. */
  metricsRetentionMs: 60_000,
  /**
   * Largest request body the gateway keeps a copy of, to meter an LLM request (src/gateway/llm.ts)
   * or to mirror it; a larger one is neither metered nor mirrored (it is still proxied).
   */
  bodyCopyBytes: 1024 * 1024,
  /** Most mirrored requests in flight (all targets); beyond, a copy is dropped and counted. */
  mirrorMaxInFlight: 64,
  /** Most calls to mirror evaluators in flight; beyond, a pair is not evaluated. */
  evaluatorMaxInFlight: 8,
  /** Longest a call to a mirror's evaluator may take, whole (then it counts as an evaluator error). */
  evaluatorTimeoutMs: 10_000,
} as const;

/** Largest delay a Node.js timer takes (larger ones fire after 1 ms). */
export const MAX_TIMER_MS = 2_147_483_647;
