// Loads the project's TypeScript in the processes Pulumi starts: the program (Pulumi.yaml `main` points at
// scripts/lib/program.js) and the dynamic provider (the `__provider` text components/resource.ts writes calls
// provider() below). Every preview starts those
// processes, and loading the TypeScript compiler took about 3 s of each start, so each file is transpiled
// once per version (keyed by its content, tsconfig.json and the TypeScript version) and the JavaScript is
// kept under node_modules/.cache/stage2-typescript; a warm start needs no compiler at all. Type checking is
// `npm run typecheck`'s job; a syntax error still fails the load. Each file carries an inline source map, which
// costs nothing unless a process turns source maps on (the tests do: test/support/register.js), so that a failure's
// stack names the TypeScript line.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

let registeredRoot;

function register(root) {
  if (registeredRoot) return;
  registeredRoot = root;
  const tsconfig = path.join(root, "tsconfig.json");
  const settings = [
    "inline source map",
    fs.readFileSync(tsconfig, "utf8"),
    fs.readFileSync(path.join(root, "node_modules", "typescript", "package.json"), "utf8"),
  ].join("\0");
  const cacheDir = path.join(root, "node_modules", ".cache", "stage2-typescript");
  let ts;
  let options;
  const transpile = (source, filename) => {
    ts ??= require(path.join(root, "node_modules", "typescript"));
    options ??= ts.parseJsonConfigFileContent(
      ts.readConfigFile(tsconfig, ts.sys.readFile).config,
      ts.sys,
      root,
    ).options;
    options.inlineSourceMap = true;
    const out = ts.transpileModule(source, { compilerOptions: options, fileName: filename, reportDiagnostics: true });
    if (out.diagnostics && out.diagnostics.length) {
      const messages = out.diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "));
      throw new Error(`${filename}: ${messages.join("; ")}`);
    }
    return out.outputText;
  };
  require.extensions[".ts"] = (module, filename) => {
    const source = fs.readFileSync(filename, "utf8");
    const key = crypto.createHash("sha256").update(settings).update("\0").update(source).digest("hex");
    const cached = path.join(cacheDir, `${key}.js`);
    let js;
    try {
      js = fs.readFileSync(cached, "utf8");
    } catch {
      js = transpile(source, filename);
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        fs.writeFileSync(`${cached}.${process.pid}`, js);
        fs.renameSync(`${cached}.${process.pid}`, cached);
      } catch {
        // A read-only checkout: transpile on every start.
      }
    }
    module._compile(js, filename);
  };
}

/**
 * The dynamic provider for one kind of database object, in the engine's provider process: provider/index.ts
 * from the project at `root`, loaded once per process (`global.__stage2Host`, which state written by the earlier,
 * closure-serialized loader shares) on the first call, so that loading it costs nothing until the engine asks.
 */
function provider(root, kind) {
  register(root);
  const host = () => (global.__stage2Host ??= require(path.join(root, "provider")));
  return {
    configure: (req) => host().configure(req.config),
    check: (olds, news) => host().check(kind, olds, news),
    diff: (id, olds, news) => host().diff(kind, id, olds, news),
    create: (inputs) => host().create(kind, inputs),
    read: (id, props) => host().read(kind, id, props),
    update: (id, olds, news) => host().update(kind, id, olds, news),
    delete: (id, props) => host().remove(kind, id, props),
  };
}

module.exports = { register, provider };
