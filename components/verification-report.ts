/**
 * The runbook's verification report, computed from the live database after everything else converged.
 * Its revision is a digest of what every other object recorded at its last write, so any converge
 * recomputes the report, and a no-change run leaves it alone.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "../database/resource";
import type { ReportSpec } from "../report/kind";
import {
  expectedChecks,
  reportSchema,
  type VerificationExpectations,
  type VerificationReport as Report,
} from "../report/verify";

export interface VerificationReportArgs {
  readonly expectations: VerificationExpectations;
  /** Every resource the report verifies. */
  readonly dependsOn: DatabaseObject<object>[];
}

export class VerificationReport extends pulumi.ComponentResource {
  readonly report: pulumi.Output<Report | undefined>;
  readonly checkedAt: pulumi.Output<string>;
  readonly target: pulumi.Output<string>;

  constructor(name: string, args: VerificationReportArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:verify:VerificationReport", name, {}, opts);
    const revision = pulumi
      .all(args.dependsOn.map((r) => r.observed))
      .apply((observed) => createHash("sha256").update(JSON.stringify(observed)).digest("hex").slice(0, 16));
    const resource = new DatabaseObject<ReportSpec>(
      "VerificationReport",
      `${name}/report`,
      {
        expectations: args.expectations,
        expect: expectedChecks(args.expectations),
        revision,
      },
      { parent: this, dependsOn: args.dependsOn },
    );
    // Validated before it is exported: a report of the wrong shape fails the run instead of being pasted.
    // No report yet when the run that would have created it was interrupted (a refresh then has none).
    this.report = resource.status.apply((s) => (s?.report === undefined ? undefined : reportSchema.parse(s.report)));
    this.checkedAt = resource.status.apply((s) => String(s?.checkedAt ?? ""));
    this.target = resource.status.apply((s) => String(s?.target ?? ""));
    this.registerOutputs({ report: this.report, checkedAt: this.checkedAt });
  }
}
