/**
 * What the runbook's verification must find, as the model says it (report/verify.ts checks the live database
 * against it): the tables, the index columns the runbook names, the bucket and its policies, the seeds, the
 * tenants' feature rows, less what a rollback took out on purpose.
 */
export interface VerificationExpectations {
  readonly schema: string;
  readonly tables: readonly string[];
  /** projects columns whose index the runbook checks. */
  readonly indexColumns: readonly string[];
  readonly bucket: string;
  readonly storagePolicies: readonly string[];
  readonly storagePolicyPrefix: string;
  readonly partnerOrgIds: readonly string[];
  readonly normalizationAliases: readonly string[];
  readonly tenants: readonly string[];
  readonly flags: readonly string[];
  /** What stage2:rollback took out on purpose: checked to be absent, not present. */
  readonly absentIndexColumns: readonly string[];
  readonly bucketAbsent: boolean;
  /** "TENANT/FLAG" rows not asked for. */
  readonly excludedFeatures: readonly string[];
}
