/** `npm test`'s second run: the suites of real third-party components, one at a time (test/component-suites.js). */
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: require('./test/component-suites').map((p) => `<rootDir>/${p}`), testPathIgnorePatterns: ['/node_modules/'], maxWorkers: 1 };
