// Runs a TypeScript command (its exported `run(argv)`, e.g. cli/plan.ts) through the transpile cache, without the
// TypeScript compiler on a warm start: for scripts/stage2.sh, which calls one after every preview.
//   node scripts/lib/run.js cli/plan.ts --events <file>
"use strict";
const path = require("path");
const root = path.resolve(__dirname, "..", "..");
require("./typescript-loader").register(root);
require(path.resolve(root, process.argv[2])).run(process.argv.slice(3));
