/**
 * The verification report as a database object: its "live state" is the set of runbook checks computed from
 * the database, its desired state is every check passing. So `preview --refresh` shows a failing check as a
 * planned change (naming the check), `up` recomputes the report after everything else converged, and the
 * full report travels in the resource's `status` output, which index.ts exports as the stack outputs.
 */
import type { Db } from "../database/db";
import type { ObjectKind } from "../database/kinds/kind";
import {
  checksOf,
  reportSchema,
  verificationQuery,
  type Checks,
  type VerificationExpectations,
  type VerificationReport,
} from "./verify";

export interface ReportSpec {
  readonly expectations: VerificationExpectations;
  /** Every check as it must read: all true. */
  readonly expect: Checks;
  /** Digest of what the report depends on, so a converge of any of it recomputes the report. */
  readonly revision: string;
}

export async function runVerification(db: Db, expectations: VerificationExpectations): Promise<VerificationReport> {
  const rows = await db.read<{ report: unknown }>(verificationQuery(expectations));
  const parsed = reportSchema.safeParse(rows[0]?.report);
  if (!parsed.success) {
    throw new Error(
      `the verification query returned an unexpected shape: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}

async function observe(db: Db, spec: ReportSpec) {
  const report = await runVerification(db, spec.expectations);
  return {
    live: { ...spec, expect: checksOf(report) },
    status: { report, checkedAt: new Date().toISOString(), target: db.transport.description },
  };
}

export const verificationReport: ObjectKind<ReportSpec> = {
  describe: () => "verification report",
  id: () => "stage2-verification",
  identityKeys: [],
  adoptable: false,

  read: (db, spec) => observe(db, spec),

  async create(db, spec) {
    const { live, status } = await observe(db, spec);
    return { observed: live, status };
  },

  update(db, _olds, news) {
    return this.create(db, news);
  },

  async delete() {
    // A report owns nothing in the database.
  },
};
