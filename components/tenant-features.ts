/**
 * Per-tenant feature rows, inserted disabled when missing. One resource for all tenants: a refresh costs one
 * query whether there is one tenant or ten thousand; its inputs name the tenant list (database/specs.ts
 * featureRowsResource), and its state holds the list once and only the exceptions of the rows.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "./resource";
import { featureRowsResource, type FeatureRowsResourceSpec, type FeatureRowsSpec } from "../database/specs";

export interface TenantFeaturesArgs {
  readonly spec: FeatureRowsSpec;
  /** The features table. */
  readonly dependsOn: pulumi.Resource[];
}

export class TenantFeatures extends pulumi.ComponentResource {
  readonly rows: DatabaseObject<FeatureRowsResourceSpec>;

  constructor(name: string, args: TenantFeaturesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:data:TenantFeatures", name, {}, opts);
    this.rows = new DatabaseObject<FeatureRowsResourceSpec>(
      "FeatureRows",
      `${name}/rows`,
      featureRowsResource(args.spec),
      {
        parent: this,
        dependsOn: args.dependsOn,
      },
    );
    this.registerOutputs({});
  }
}
