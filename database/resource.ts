/**
 * The Pulumi resource for one database object.
 *
 * Pulumi serializes a dynamic provider's code into the state, and runs that old copy for read and delete.
 * Here the serialized provider is only a loader: it registers scripts/lib/typescript-loader.js (TypeScript
 * transpiled once per file version and cached) and requires database/provider.ts from the project (the
 * provider process runs in the project directory). So state stays
 * small, the logic is the checked-out code (as with a real provider plugin), and no connection or secret is
 * ever captured in the closure: the provider reads them from the stack configuration in configure().
 */
import * as pulumi from "@pulumi/pulumi";
import type { KindName } from "./provider";
import { toResource } from "./wire";

/** Type tokens read `pulumi-nodejs:dynamic/stage2:<Kind>` in previews. */
const MODULE = "stage2";

function loaderFor(kind: string): pulumi.dynamic.ResourceProvider {
  // Everything below runs in the engine's provider process, not in the program.
  const host = (): typeof import("./provider") => {
    const g = global as unknown as { __stage2Host?: typeof import("./provider") };
    if (!g.__stage2Host) {
      const fs = require("fs");
      const path = require("path");
      // The engine starts the provider in the program's folder; the project root is where Pulumi.yaml is.
      let root = process.env.STAGE2_PROJECT_ROOT || process.cwd();
      while (!fs.existsSync(path.join(root, "Pulumi.yaml")) && path.dirname(root) !== root) root = path.dirname(root);
      require(path.join(root, "scripts", "lib", "typescript-loader.js")).register(root);
      g.__stage2Host = require(path.join(root, "database", "provider"));
    }
    return g.__stage2Host!;
  };
  return {
    configure: async (req) => host().configure(req.config),
    check: (olds, news) => host().check(kind, olds, news),
    diff: (id, olds, news) => host().diff(kind, id, olds, news),
    create: (inputs) => host().create(kind, inputs),
    read: (id, props) => host().read(kind, id, props),
    update: (id, olds, news) => host().update(kind, id, olds, news),
    delete: (id, props) => host().remove(kind, id, props),
  };
}

const loaders = new Map<string, pulumi.dynamic.ResourceProvider>();

function loader(kind: KindName): pulumi.dynamic.ResourceProvider {
  let provider = loaders.get(kind);
  if (!provider) {
    provider = loaderFor(kind);
    loaders.set(kind, provider);
  }
  return provider;
}

/** One modelled database object: its spec as inputs; outputs add `observed` and `status`. */
export class DatabaseObject<S extends object> extends pulumi.dynamic.Resource {
  /** Canonical live state recorded at the last write. */
  declare readonly observed: pulumi.Output<S>;
  /** Output-only facts (feature values, the verification report, rows kept instead of deleted). */
  declare readonly status: pulumi.Output<Record<string, unknown>>;

  constructor(
    kind: KindName,
    name: string,
    spec: { [K in keyof S]: pulumi.Input<S[K]> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      loader(kind),
      name,
      { ...toResource(kind, spec), observed: undefined, status: undefined },
      opts,
      MODULE,
      kind,
    );
  }
}
