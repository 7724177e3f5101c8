/**
 * The verification report as a database object: its "live state" is the set of runbook checks computed from
 * the database, its desired state is every check passing. So `preview --refresh` shows a failing check as a
 * planned change (naming the check), `up` recomputes the report after everything else converged, and the
 * full report travels in the resource's `status` output, which index.ts exports as the stack outputs.
 */
import type { Db } from "../database/db";
import type { ObjectKind } from "../database/kinds/kind";
import { isDeepStrictEqual } from "node:util";
import { loadSeeds } from "../config/seeds";
import { configuredStack, tenantsDigest } from "../database/stack-config";
import { compareWithModel } from "../database/compare";
import { buildModel, type Stage2Model } from "../model";
import { accessCheck, accessObjects, grantedOnIn } from "./access";
import { movesAccess } from "./plan";
import {
  checksOf,
  reportSchema,
  verificationQuery,
  type AccessCheck,
  type Checks,
  type VerificationExpectations,
  type VerificationReport,
} from "./verify";

/** The expectations as the report's spec carries them: the tenant list by its digest (database/stack-config.ts). */
export type ReportExpectations = Omit<VerificationExpectations, "tenants"> & { readonly tenantsDigest: string };

export interface ReportSpec {
  /**
   * How to check; informational (reconcile never counts it as a change): what the preview must show is whether
   * the checks pass, not how the report is computed.
   */
  readonly expectations: ReportExpectations;
  /** Every check as it must read: all true, nothing missing. */
  readonly expect: Checks;
}

/**
 * The whole report, from the live database: the runbook's checks and access as the model has it (report/access.ts).
 * The stack outputs (index.ts) and `npm run report` both compute it here, and report/verify.ts reportOk says from
 * it whether all is ok.
 */
export async function runVerification(db: Db, model: Stage2Model): Promise<VerificationReport> {
  return { ...(await runChecks(db, model.verification)), ...(await checkAccess(db, model)) };
}

/**
 * The runbook's checks alone (one query): the report resource's live state. Access drift is each object's own
 * drift (its resource's diff names it), so the resource does not compare access again on every preview.
 */
export async function runChecks(db: Db, expectations: VerificationExpectations): Promise<VerificationReport> {
  const rows = await db.read<{ report: unknown }>(verificationQuery(expectations, await db.bucketSource()));
  const parsed = reportSchema.safeParse(rows[0]?.report);
  if (!parsed.success) {
    throw new Error(
      `the verification query returned an unexpected shape: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}

/**
 * Every access-bearing object of the model compared with the database. A role's password is not read (no login):
 * it is no access a role has, and the program and `npm run report` hold no reviewer password.
 */
export async function checkAccess(db: Db, model: Stage2Model): Promise<AccessCheck> {
  const objects = accessObjects(model);
  const grantedOn = grantedOnIn(objects);
  const compared = await compareWithModel(db, objects, {
    counts: (o, change) => movesAccess(o.kind, o.spec, change, grantedOn),
    read: { logins: false },
  });
  return accessCheck(objects, compared, grantedOn);
}

/** The spec's form of what the report checks: the tenant list by its digest. */
export function specExpectations(e: VerificationExpectations): ReportExpectations {
  const { tenants, ...rest } = e;
  return { ...rest, tenantsDigest: tenantsDigest(tenants) };
}

/**
 * The live report, checked against the current model (built from the configuration the provider was handed,
 * current with PULUMI_RUN_PROGRAM=true): a refresh reads the report the state holds, whose expectations date
 * from the last write, and the seeds or tenants may have changed since. A write carries the program's spec,
 * which must name the same expectations: a provider left with another configuration must not write. The
 * status holds the report alone, no timestamp, so a refresh that finds the database as it was stays quiet.
 */
async function observe(db: Db, spec: ReportSpec, writing: boolean) {
  const config = configuredStack("read");
  const expectations = buildModel(config, loadSeeds(config.seedsFile)).verification;
  const current = specExpectations(expectations);
  if (writing && !isDeepStrictEqual(current, spec.expectations)) {
    throw new Error(
      "the provider's stage2 configuration is not the one the program declared; run with " +
        "PULUMI_RUN_PROGRAM=true (the documented commands do) so that the provider reads the current configuration",
    );
  }
  const report = await runChecks(db, expectations);
  return {
    live: { expectations: current, expect: checksOf(report) },
    status: { report, target: db.transport.description },
  };
}

export const verificationReport: ObjectKind<ReportSpec> = {
  describe: () => "verification report",
  id: () => "stage2-verification",
  identityKeys: [],
  adoptable: false,
  marksTeardown: true,

  read: (db, spec) => observe(db, spec, false),

  async create(db, spec) {
    const { live, status } = await observe(db, spec, true);
    return { observed: live, status };
  },

  update(db, _olds, news) {
    return this.create(db, news);
  },

  async delete() {
    // A report owns nothing in the database.
  },
};
