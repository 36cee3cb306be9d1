#!/usr/bin/env node
// `model-canary …` (package.json "bin"; `npx model-canary …` in a clone): the operator CLI.
// Registers tsx (a dependency of the project) with the project's own tsconfig — not whatever
// tsconfig.json the current directory has — and runs the TypeScript entry src/cli/main.ts, found
// from this file's own place, so it works from any directory.
'use strict';
const { join } = require('node:path');
const root = join(__dirname, '..');
process.env.TSX_TSCONFIG_PATH = join(root, 'tsconfig.json');
require('tsx/cjs/api').register();
require(join(root, 'src', 'cli', 'main.ts'));
