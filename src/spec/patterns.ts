/**
 * The names and URLs that a rollout spec and the gateway's routes accept: one set of rules, so
 * that nothing the API accepts is refused by the data plane at the rollout's first change.
 * Pure (no I/O); the spec schema and the gateway's route schema both build on these.
 */
import { z } from 'zod';

/** DNS-label-like: lower-case letters, digits and '-', starting with a letter, at most 63. */
export const TARGET_PATTERN = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** First path segments the gateway keeps for itself (`/admin`, `/metrics`, `/healthz`); never a target. */
export const RESERVED_TARGETS: ReadonlySet<string> = new Set(['admin', 'metrics', 'healthz']);

export const TARGET_RULE = "a DNS-label-like name: lower-case letters, digits and '-', starting with a letter, at most 63 characters";
export const VERSION_RULE = "1-63 characters of letters, digits, '.', '_' or '-'";

/** Why `target` cannot name a target, or undefined when it can. */
export function targetProblem(target: string): string | undefined {
  if (!TARGET_PATTERN.test(target)) return `target must be ${TARGET_RULE}`;
  if (RESERVED_TARGETS.has(target)) return `target "${target}" is reserved by the gateway (${[...RESERVED_TARGETS].join(', ')})`;
  return undefined;
}

/**
 * An upstream URL: absolute http(s) with a host, no credentials, query or fragment (the gateway
 * appends the proxied path and query to it).
 */
export function upstreamUrlProblem(text: string, what = 'url'): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${what} must be an absolute http(s) URL`;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return `${what} must be an absolute http(s) URL`;
  if (url.username || url.password) return `${what} must not carry credentials`;
  if (url.search || text.includes('?')) return `${what} must not have a query (the gateway appends the request's own)`;
  if (url.hash || text.includes('#')) return `${what} must not have a fragment`;
  return undefined;
}

export const targetSchema = (what = 'target') =>
  z.string({ error: `${what} must be a string` }).superRefine((text, ctx) => {
    const problem = targetProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem.replace(/^target/, what) });
  });

export const versionNameSchema = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(VERSION_PATTERN, `${what} must be ${VERSION_RULE}`);

export const upstreamUrlSchema = (what: string) =>
  z.string({ error: `${what} must be a string` }).superRefine((text, ctx) => {
    const problem = upstreamUrlProblem(text, what);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A URL the control plane calls (webhooks): absolute http(s); a query is allowed. */
export const callbackUrlSchema = (what: string) =>
  z.string({ error: `${what} must be a string` }).refine(
    (text) => {
      try {
        const url = new URL(text);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: `${what} must be an absolute http(s) URL` },
  );

/**
 * Traffic weights are percentages in steps of 0.01: the gateway assigns 10,000 buckets, so 0.01%
 * is one bucket and the finest split any router is asked for.
 */
export const WEIGHT_RESOLUTION = 0.01;

export function isWeightMultiple(weight: number): boolean {
  const scaled = weight / WEIGHT_RESOLUTION;
  const steps = Math.round(scaled);
  // 1e-81 is "close to" 0 steps, but a weight above 0 must be at least one step.
  return Math.abs(scaled - steps) < 1e-6 && (steps > 0 || weight === 0);
}

/** `100 - weight`, rounded to the weight resolution (so 100 - 0.07 is 99.93, not 99.93000000000001). */
export function complementWeight(weight: number): number {
  return Number((100 - weight).toFixed(2));
}

/**
 * A header name a step may match on, compared in lower case: letters, digits and '-' (NGINX
 * names a header by a variable, which cannot hold other characters, and drops '_' headers).
 */
export const HEADER_NAME_PATTERN = /^[A-Za-z0-9-]{1,100}$/;
/** Header values a step may match on: visible ASCII without quotes or backslashes, so every router can express them. */
export const HEADER_VALUE_PATTERN = /^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/;

/** An Idempotency-Key header: 1-255 visible ASCII characters (a UUID is the usual choice). */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
export const IDEMPOTENCY_KEY_RULE = 'Idempotency-Key must be 1-255 visible ASCII characters, such as a UUID';
