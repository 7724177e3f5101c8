// Mocha loads the tests' TypeScript through the transpile cache the commands use (scripts/lib/typescript-loader.js):
// each test file runs in a mocha process of its own (test/run.ts), and ts-node spent about 2 s of CPU in each
// transpiling the same files again.
"use strict";
require("../../scripts/lib/typescript-loader").register(require("path").resolve(__dirname, "..", ".."));
