/**
 * The Pulumi resource for one database object.
 *
 * Pulumi stores a dynamic provider's code in the state (`__provider`, a module whose `handler()` returns the
 * provider) and runs that copy for read and delete. Here that code is a loader of one line, written out below
 * rather than produced by Pulumi's closure serializer (which inspects every closure through the V8 inspector and
 * parses it with the TypeScript compiler on every run, for each of the twelve kinds): it asks
 * scripts/lib/typescript-loader.js (TypeScript transpiled once per file version and cached) for the provider,
 * which is provider/index.ts from the project (the provider process runs in the project directory). So state
 * stays small, the logic is the checked-out code (as with a real provider plugin), and no connection or secret
 * is ever captured: the provider reads them from the stack configuration in configure(). State written by the
 * earlier, serialized loader keeps working: both load the same module once per process (`global.__stage2Host`).
 */
import * as pulumi from "@pulumi/pulumi";
import type { KindName } from "../provider";
import { toResource } from "../database/wire";

/** Type tokens read `pulumi-nodejs:dynamic/stage2:<Kind>` in previews (what pulumi.dynamic.Resource would make). */
const TYPE_PREFIX = "pulumi-nodejs:dynamic/stage2:";

/**
 * The provider module for one kind, as the dynamic-provider host loads it (require-from-string, then handler()):
 * it finds the project (the engine starts the provider in the program's folder; the root is where Pulumi.yaml
 * is) and asks scripts/lib/typescript-loader.js for the provider. It travels with every call the engine makes
 * about the object (seven per object in a preview) and is stored twice per object in the state, so it is
 * written as tersely as it can be read.
 */
export function loaderSource(kind: string): string {
  return (
    "exports.handler=function(){var f=require('fs'),p=require('path'),r=process.cwd();" +
    "while(!f.existsSync(p.join(r,'Pulumi.yaml'))&&p.dirname(r)!==r)r=p.dirname(r);" +
    `return require(p.join(r,'scripts/lib/typescript-loader.js')).provider(r,'${kind}')}`
  );
}

/** A resource of a `pulumi stack export`, the parts read here. */
interface ExportedResource {
  readonly urn: string;
  readonly type: string;
  readonly inputs?: Record<string, unknown>;
  readonly outputs?: Record<string, unknown>;
}

/**
 * Resources whose stored provider code is not what this program writes, by URN. The engine runs a dynamic
 * resource's `__provider` from the state to read and delete it, so whoever can write the state can have code run
 * by the next refresh, in the job that holds the owner's credentials. Every dynamic resource of a stack must
 * therefore carry exactly the loader above (scripts/stage2.sh checks before up, refresh and destroy).
 */
export function foreignProviderCode(deployment: { readonly resources?: readonly ExportedResource[] }): string[] {
  return (deployment.resources ?? [])
    .filter((r) => {
      const code = [r.inputs?.__provider, r.outputs?.__provider].filter((c) => c !== undefined);
      if (!code.length && !r.type.startsWith("pulumi-nodejs:dynamic")) return false;
      const kind = r.type.startsWith(TYPE_PREFIX) ? r.type.slice(TYPE_PREFIX.length) : undefined;
      return !kind || code.length === 0 || code.some((c) => c !== loaderSource(kind));
    })
    .map((r) => r.urn);
}

/**
 * One modelled database object: its spec as inputs; outputs add `observed` and `status`. A dynamic resource as
 * pulumi.dynamic.Resource declares one (same type token, same `__provider` input), with the provider's code
 * given as text instead of serialized from a closure.
 */
export class DatabaseObject<S extends object> extends pulumi.CustomResource {
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
      `${TYPE_PREFIX}${kind}`,
      name,
      { ...toResource(kind, spec), __provider: loaderSource(kind), observed: undefined, status: undefined },
      opts,
    );
  }
}
