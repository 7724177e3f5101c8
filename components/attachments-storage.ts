/**
 * The private bucket `attachments` and exactly three policies on storage.objects (plus the guard that
 * reports a fourth `attachments_*` policy added by hand). The policies read attachments_meta and call the
 * helper, so they wait for the schema.
 */
import { policySetResource } from "../database/specs";
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "./resource";
import type { Stage2Model } from "../model";

export interface AttachmentsStorageArgs {
  readonly model: Pick<Stage2Model, "bucket" | "storagePolicies" | "storagePolicySet">;
  /** The schema objects the policies reference (attachments_meta, the helper). */
  readonly dependsOn: pulumi.Resource[];
}

export class AttachmentsStorage extends pulumi.ComponentResource {
  /** Absent while stage2:rollback removes it. */
  readonly bucket?: DatabaseObject<object>;
  readonly resources: pulumi.Resource[];

  constructor(name: string, args: AttachmentsStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:storage:AttachmentsStorage", name, {}, opts);
    const { model } = args;
    this.bucket = model.bucket
      ? new DatabaseObject("Bucket", `${name}/bucket`, model.bucket, { parent: this })
      : undefined;
    const policies = model.storagePolicies.map(
      (policy) =>
        new DatabaseObject("Policy", `${name}/${policy.name}`, policy, { parent: this, dependsOn: args.dependsOn }),
    );
    const set = new DatabaseObject("PolicySet", `${name}/policies`, policySetResource(model.storagePolicySet), {
      parent: this,
      dependsOn: policies,
    });
    this.resources = [...(this.bucket ? [this.bucket] : []), ...policies, set];
    this.registerOutputs({});
  }
}
