/**
 * The seed rows of partner_org and partner_normalization, one resource per row, owned by its key. A row
 * removed from the data file is deleted by key on the next up; normalization rows wait for the org they
 * reference, and are deleted before it.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "./resource";
import type { RowSpec } from "../database/specs";
import type { Stage2Model } from "../model";

export interface PartnerSeedsArgs {
  readonly model: Pick<Stage2Model, "partnerOrgs" | "normalizations">;
  /** The partner_org and partner_normalization tables. */
  readonly dependsOn: pulumi.Resource[];
}

export class PartnerSeeds extends pulumi.ComponentResource {
  readonly resources: pulumi.Resource[];

  constructor(name: string, args: PartnerSeedsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:data:PartnerSeeds", name, {}, opts);
    const orgs = new Map<string, DatabaseObject<RowSpec>>();
    for (const row of args.model.partnerOrgs) {
      orgs.set(
        String(row.key.id),
        new DatabaseObject<RowSpec>("SeedRow", `${name}/partner_org/${row.key.id}`, row, {
          parent: this,
          dependsOn: args.dependsOn,
        }),
      );
    }
    const normalizations = args.model.normalizations.map((row) => {
      const org = orgs.get(String(row.values.partner_org_id));
      return new DatabaseObject<RowSpec>("SeedRow", `${name}/partner_normalization/${row.key.alias}`, row, {
        parent: this,
        dependsOn: [...args.dependsOn, ...(org ? [org] : [])],
      });
    });
    this.resources = [...orgs.values(), ...normalizations];
    this.registerOutputs({});
  }
}
