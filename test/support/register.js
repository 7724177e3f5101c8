// Mocha loads the tests' TypeScript through the transpile cache the commands use (scripts/lib/typescript-loader.js):
// each test file runs in a mocha process of its own (test/run.ts), and ts-node spent about 2 s of CPU in each
// transpiling the same files again.
"use strict";
require("../../scripts/lib/typescript-loader").register(require("path").resolve(__dirname, "..", ".."));
// A failure's stack names the TypeScript line (the cache's files carry inline source maps). It costs a mocha
// process about 0.4 s of CPU (Node.js then reads the SDK's source maps too; unit/components.test.ts, 3 runs each);
// a CI log that points at the wrong line costs more.
process.setSourceMapsEnabled(true);
