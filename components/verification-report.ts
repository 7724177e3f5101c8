/**
 * The runbook's verification report. A resource whose live state is the runbook's checks, so that a failing
 * check fails the drift check, naming the check; and, after an `up`, the report computed again from the live
 * database once everything converged, which the stack exports.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabaseObject } from "./resource";
import { specExpectations, type ReportSpec } from "../report/kind";
import { expectedChecks, type VerificationExpectations, type VerificationReport as Report } from "../report/verify";

export interface VerificationReportArgs {
  readonly expectations: VerificationExpectations;
  /** Every resource the report verifies. */
  readonly dependsOn: DatabaseObject<object>[];
  /** Computes the report from the live database now (after an `up` converged everything it depends on). */
  readonly verifyNow: () => Promise<Report>;
  /** The database verifyNow reads, as its transport names it. */
  readonly target: string;
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
    // The report as the database answers now: the resource's own status is what its last write recorded (a
    // refresh changes no output, provider/index.ts read), so once the resource is done (after everything it
    // depends on; in an up, converged), ask again. None yet: a refresh after the run that would have created it
    // was killed.
    this.report = resource.status.apply(async (s) => (s?.report === undefined ? undefined : args.verifyNow()));
    // Where the report was read now, not where the resource's last write was: after a move to another database
    // with nothing to change, the resource is not written again.
    this.target = resource.status.apply((s) => (s?.report === undefined ? "" : args.target));
    this.registerOutputs({ report: this.report });
  }
}
