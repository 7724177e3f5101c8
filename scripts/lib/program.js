// The program's entry point (Pulumi.yaml `main`): index.ts, loaded through the transpile cache instead of
// ts-node, so a preview does not load the TypeScript compiler when nothing changed.
"use strict";
const path = require("path");
const root = path.resolve(__dirname, "..", "..");
require("./typescript-loader").register(root);
module.exports = require(path.join(root, "index.ts"));
