// Runs a TypeScript command as the main module, through the transpile cache (./typescript-loader.js): no TypeScript
// compiler on a warm start, about 2 s of CPU less per command than ts-node, which transpiled every file of the
// command on every run. `require.main === module` holds in the command, as it did under ts-node. Every npm script,
// scripts/stage2.sh and the workflows run commands this way:
//   node scripts/lib/run.js cli/plan.ts --events <file>
"use strict";
const path = require("path");
const root = path.resolve(__dirname, "..", "..");
require("./typescript-loader").register(root);
process.argv.splice(1, 2, path.resolve(root, process.argv[2]));
require("module").runMain();
