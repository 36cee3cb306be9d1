/**
 * The suites that run real third-party components — NGINX, Prometheus, a kube-apiserver on etcd,
 * Temporal behind a TLS terminator — each with model servers and a Temporal server of its own: a
 * dozen processes per suite. `npm test` runs them after the rest, one at a time
 * (jest.components.config.js), so that they never starve the timing-sensitive suites of CPU.
 */
module.exports = [
  'test/activities/nginx-router.test.ts',
  'test/activities/prometheus-source.test.ts',
  'test/activities/gateway-api-router.test.ts',
  'test/e2e/nginx.test.ts',
  'test/e2e/prometheus.test.ts',
  'test/e2e/gateway-api.test.ts',
  'test/e2e/temporal-tls.test.ts',
  'test/e2e/cluster.test.ts',
];
