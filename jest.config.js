/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // test/long runs on its own (`npm run test:long`, jest.long.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/long/'],
  testTimeout: 120_000,
  // Suites share 2 cores with Temporal servers; run files one or two at a time.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
