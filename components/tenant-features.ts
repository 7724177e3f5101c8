/**
 * Per-tenant feature rows, inserted disabled when missing. One resource for all tenants: a refresh costs one
 * query whether there is one tenant or ten thousand, and the state holds only the exceptions of the rows.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "../database/resource";
import type { FeatureRowsSpec } from "../database/specs";

export interface TenantFeaturesArgs {
  readonly spec: FeatureRowsSpec;
  /** The features table. */
  readonly dependsOn: pulumi.Resource[];
}

export class TenantFeatures extends pulumi.ComponentResource {
  readonly rows: DatabaseObject<FeatureRowsSpec>;

  constructor(name: string, args: TenantFeaturesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:data:TenantFeatures", name, {}, opts);
    this.rows = new DatabaseObject<FeatureRowsSpec>("FeatureRows", `${name}/rows`, args.spec, {
      parent: this,
      dependsOn: args.dependsOn,
    });
    this.registerOutputs({});
  }
}
