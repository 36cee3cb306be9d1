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

export async function requestJson<T>({ method, url, body, token, timeoutMs = 5_000 }: JsonRequest): Promise<T> {
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
  const text = await response.body.text();
  if (response.statusCode >= 200 && response.statusCode < 300) {
    return (text ? JSON.parse(text) : undefined) as T;
  }
  const message = `${method} ${url} answered ${response.statusCode}: ${text.slice(0, 500)}`;
  const retryable = response.statusCode >= 500 || response.statusCode === 408 || response.statusCode === 429;
  if (retryable) throw ApplicationFailure.retryable(message, 'UpstreamUnavailable');
  throw ApplicationFailure.nonRetryable(message, 'UpstreamRejected');
}
