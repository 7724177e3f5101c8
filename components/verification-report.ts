/**
 * The runbook's verification report. A resource whose live state is the runbook's checks, so that a failing
 * check fails the drift check, naming the check; and, after an `up`, the report computed again from the live
 * database once everything converged, which the stack exports.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "./resource";
import { specExpectations, type ReportSpec } from "../report/kind";
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
  /** Computes the report from the live database now (after an `up` converged everything it depends on). */
  readonly verifyNow: () => Promise<Report>;
}

export class VerificationReport extends pulumi.ComponentResource {
  /** Undefined when there is none yet (a refresh after the run that would have created it was killed). */
  readonly report: pulumi.Output<Report | undefined>;
  readonly target: pulumi.Output<string>;

  constructor(name: string, args: VerificationReportArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stage2:verify:VerificationReport", name, {}, opts);
    const spec: ReportSpec = {
      expectations: specExpectations(args.expectations),
      expect: expectedChecks(args.expectations),
    };
    const resource = new DatabaseObject<ReportSpec>("VerificationReport", `${name}/report`, spec, {
      parent: this,
      dependsOn: args.dependsOn,
    });
    // A preview shows the report the refresh read. An `up` shows the database as it left it: the resource itself
    // is only rewritten when a check failed, so once it is done (after everything it depends on), ask again.
    this.report = resource.status.apply(async (s): Promise<Report | undefined> => {
      if (s?.report === undefined) return undefined;
      // Validated before it is exported: a report of the wrong shape fails the run instead of being pasted.
      return pulumi.runtime.isDryRun() ? reportSchema.parse(s.report) : args.verifyNow();
    });
    this.target = resource.status.apply((s) => String(s?.target ?? ""));
    this.registerOutputs({ report: this.report });
  }
}
