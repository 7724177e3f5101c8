/**
 * Per-tenant feature rows, inserted disabled when missing. One resource for all tenants: a refresh costs
 * one query whether there is one tenant or a thousand. The flags' current values are reported in `values`.
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
  /** tenant -> flag -> enabled, as read from the database. */
  readonly values: pulumi.Output<Record<string, Record<string, boolean>>>;

  constructor(name: string, args: TenantFeaturesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:data:TenantFeatures", name, {}, opts);
    this.rows = new DatabaseObject<FeatureRowsSpec>("FeatureRows", `${name}/rows`, args.spec, {
      parent: this,
      dependsOn: args.dependsOn,
    });
    this.values = this.rows.status.apply((s) => (s?.values ?? {}) as Record<string, Record<string, boolean>>);
    this.registerOutputs({ values: this.values });
  }
}
