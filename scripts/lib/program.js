// The program's entry point (Pulumi.yaml `main`): index.ts, loaded through the transpile cache instead of
// ts-node, so a preview does not load the TypeScript compiler when nothing changed.
"use strict";
const path = require("path");
const root = path.resolve(__dirname, "..", "..");
// Pulumi's language host installs source-map-support before it loads the program, and the SDK formats a stack
// trace for every resource it registers and every promise it tracks (resource.js sourcePosition, debuggable.js):
// mapping each frame cost about 0.4 s of CPU per preview. Nothing here has a source map (the transpile cache
// writes none; the SDK's own maps point at .ts files it does not ship), so V8's own formatting says the same.
// Error.prepareStackTrace is the hook source-map-support set (named prepareStackTrace); without it V8 formats
// stacks natively.
if (Error.prepareStackTrace?.name === "prepareStackTrace") Error.prepareStackTrace = undefined;
require("./typescript-loader").register(root);
// A killed CLI must not leave this process and its language host behind (provider/engine-watch.ts).
require(path.join(root, "provider", "engine-watch.ts")).endProgramWithEngine();
module.exports = require(path.join(root, "index.ts"));
