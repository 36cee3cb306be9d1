/**
 * DEMO ONLY — runs one fake model version: `npm run demo:model -- --name v2 --port 9002 --latency-ms 120`.
 * Flags (or env): --name (MODEL_VERSION), --port (MODEL_PORT, 9001), --host (MODEL_HOST),
 * --latency-ms (MODEL_LATENCY_MS), --latency-spread (MODEL_LATENCY_SPREAD), --error-rate
 * (MODEL_ERROR_RATE), --ttft-ms (MODEL_TTFT_MS), --tokens-per-second (MODEL_TOKENS_PER_SECOND),
 * --max-tokens (MODEL_MAX_TOKENS), --cpu-ms-per-request (MODEL_CPU_MS_PER_REQUEST),
 * --inter-token-ms (MODEL_INTER_TOKEN_MS: median gap between streamed tokens; wins over
 * --tokens-per-second, which means a gap of 1000/N ms), --answer-tokens (MODEL_ANSWER_TOKENS:
 * the answer's natural length, e.g. 64 for a "2× tokens" candidate), --truncation-rate
 * (MODEL_TRUNCATION_RATE: share of answers cut short, finish_reason "length"),
 * --invalid-json-rate (MODEL_INVALID_JSON_RATE: share of JSON-mode answers that are broken JSON).
 * What they do: src/demo/model-server.ts.
 */
import { optionsFromArgs, startModelServer } from './model-server';

async function main(): Promise<void> {
  const options = optionsFromArgs(process.argv.slice(2));
  const server = await startModelServer(options);
  console.log(JSON.stringify({ msg: 'demo model listening', version: options.version, url: server.url, options }));
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
