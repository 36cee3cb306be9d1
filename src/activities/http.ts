/**
 * Small HTTP helper for adapters: JSON in/out over undici, with errors classified so that
 * what retrying cannot fix (4xx other than 408/429) fails the activity for good.
 */
import { ApplicationFailure } from '@temporalio/common';
import { request } from 'undici';

export interface JsonRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  url: string;
  body?: unknown;
  token?: string;
  timeoutMs?: number;
}

export async function requestJson<T>(req: JsonRequest): Promise<T> {
  const { status, text } = await send(req);
  return settle<T>(req, status, text);
}

/**
 * As requestJson, for a resource that may not exist: a 404 whose error envelope carries
 * `absentCode` (`{"error": {"code": ...}}`) resolves undefined. Any other 404 (a wrong URL, not
 * the service meant) is an error like the rest, so that "absent" is never a guess.
 */
export async function requestJsonOrAbsent<T>(req: JsonRequest, absentCode: string): Promise<T | undefined> {
  const { status, text } = await send(req);
  if (status === 404 && errorCodeOf(text) === absentCode) return undefined;
  return settle<T>(req, status, text);
}

async function send({ method, url, body, token, timeoutMs = 5_000 }: JsonRequest): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await request(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: response.statusCode, text: await response.body.text() };
}

function settle<T>({ method, url }: JsonRequest, status: number, text: string): T {
  if (status >= 200 && status < 300) {
    return (text ? JSON.parse(text) : undefined) as T;
  }
  const message = `${method} ${url} answered ${status}: ${text.slice(0, 500)}`;
  const retryable = status >= 500 || status === 408 || status === 429;
  if (retryable) throw ApplicationFailure.retryable(message, 'UpstreamUnavailable');
  throw ApplicationFailure.nonRetryable(message, 'UpstreamRejected');
}

function errorCodeOf(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
