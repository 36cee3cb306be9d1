/**
 * The API as main.ts serves it (createApp behind createApiServer) on 127.0.0.1:0, a request
 * helper that sends bytes as they are, and the check of the one error envelope.
 */
import { createApp, type AppOptions } from '../../src/api/app';
import { listenApi, type ApiServer } from '../../src/api/server';
import type { ErrorBody } from '../../src/api/errors';
import type { ServerOptions } from 'node:http';

export function serveApi(options: AppOptions, serverOptions: ServerOptions = {}): Promise<ApiServer> {
  return listenApi(createApp(options), serverOptions);
}

export interface Reply {
  status: number;
  contentType: string | undefined;
  text: string;
  /** The parsed body; undefined when it is not JSON. */
  json: any;
}

/** fetch without re-encoding: strings and buffers are sent as given, with exactly these headers. */
export async function send(
  base: string,
  method: string,
  path: string,
  { body, headers = {} }: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the envelope check says so
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? undefined, text, json };
}

/** Asserts the error envelope `{"error": {"code", "message", "issues"?}}` and returns it. */
export function expectEnvelope(reply: Pick<Reply, 'contentType' | 'json' | 'text'>): ErrorBody['error'] {
  expect(reply.contentType).toMatch(/^application\/json/);
  const error = (reply.json as ErrorBody | undefined)?.error;
  if (!error || typeof error.code !== 'string' || typeof error.message !== 'string' || error.message === '') {
    throw new Error(`not the error envelope: ${reply.text.slice(0, 500)}`);
  }
  if (error.issues !== undefined) {
    expect(error.issues.length).toBeGreaterThan(0);
    for (const issue of error.issues) {
      expect(issue).toEqual({ path: expect.any(String), message: expect.any(String) });
      expect(issue.path).not.toBe('');
    }
  }
  return error;
}

/** The paths of the envelope's issues (empty when it has none). */
export function issuePaths(reply: Pick<Reply, 'json'>): string[] {
  return ((reply.json as ErrorBody | undefined)?.error.issues ?? []).map((i) => i.path);
}
