/**
 * The whole Stage 2 desired state for one stack, as plain data: what the components turn into resources,
 * what the break-glass export renders as SQL, and what the database tests apply directly.
 */
import { policySetResource } from "../database/specs";
import type { PartnerSeeds } from "../config/seeds";
import { ConfigError, type Rollback, type StackConfig } from "../config/schema";
import type {
  BucketSpec,
  FeatureRowsSpec,
  FunctionSpec,
  GrantsSpec,
  PolicySetSpec,
  PolicySpec,
  Privilege,
  RowSpec,
  SchemaSpec,
} from "../database/specs";
import type { VerificationExpectations } from "./verification";
import { grants, type ModelTable } from "./define";
import { reviewerModel, reviewerPolicies, reviewerTablePrivileges, type ReviewerModel } from "./reviewer";
import {
  APP_SCHEMA,
  HELPER,
  HELPER_GRANTS,
  PRIVATE_SCHEMA_GRANTS,
  PRIVATE_SCHEMA_SPEC,
  STAGE2_TABLES,
  VERIFIED_PROJECT_INDEX_COLUMNS,
} from "./stage2";
import {
  attachmentsBucket,
  ATTACHMENTS_BUCKET,
  STORAGE_POLICIES,
  STORAGE_POLICY_PREFIX,
  STORAGE_POLICY_SET,
} from "./storage";

export interface Stage2Model {
  readonly privateSchema: SchemaSpec;
  readonly privateSchemaGrants: GrantsSpec;
  readonly tables: readonly (ModelTable & { readonly policySet: PolicySetSpec })[];
  readonly helper: FunctionSpec;
  readonly helperGrants: GrantsSpec;
  /** Null while the bucket is rolled back. */
  readonly bucket: BucketSpec | null;
  readonly storagePolicies: readonly PolicySpec[];
  readonly storagePolicySet: PolicySetSpec;
  readonly partnerOrgs: readonly RowSpec[];
  readonly normalizations: readonly RowSpec[];
  readonly features: FeatureRowsSpec;
  readonly verification: VerificationExpectations;
  /** What stage2:rollback takes out of the model, with the reason; null when nothing is rolled back. */
  readonly rollback: Rollback | null;
  /** The read-only role previews connect as (model/reviewer.ts); null when stage2:reviewer is not set. */
  readonly reviewer: ReviewerModel | null;
}

type ModelInput = Pick<StackConfig, "features" | "bucket"> & Partial<Pick<StackConfig, "rollback" | "reviewer">>;

export function buildModel(config: ModelInput, seeds: PartnerSeeds): Stage2Model {
  const out = rollbackOf(config.rollback);
  const partnerOrgs = seeds.partner_orgs
    .filter((o) => !out.seeds.has(`partner_org:${o.id}`))
    .map((o): RowSpec => ({
      schema: APP_SCHEMA,
      table: "partner_org",
      key: { id: o.id },
      values: { label: o.label, kind: o.kind },
    }));
  const normalizations = seeds.normalizations
    .filter((n) => !out.seeds.has(`partner_normalization:${n.alias}`))
    .map((n): RowSpec => ({
      schema: APP_SCHEMA,
      table: "partner_normalization",
      key: { alias: n.alias },
      values: { partner_org_id: n.partner_org },
    }));
  const flags = [...config.features.flags].sort();
  const tenants = [...config.features.tenants].sort();
  const excluded = [...out.seeds].filter((k) => k.startsWith("features:")).map((k) => k.slice("features:".length));
  const storagePolicies = STORAGE_POLICIES.filter((p) => !out.policies.has(p.name));
  const reviewer = config.reviewer
    ? reviewerModel(
        config.reviewer.name,
        STAGE2_TABLES.map((t) => t.spec.name),
      )
    : null;
  const tables = STAGE2_TABLES.map((t) => {
    const policies = [...t.policies, ...(reviewer ? reviewerPolicies(t.spec.name, reviewer.role.name) : [])].filter(
      (p) => !out.policies.has(p.name),
    );
    return {
      ...t,
      grants: reviewer ? withGrantee(t.grants, reviewer.role.name, reviewerTablePrivileges(t.spec.name)) : t.grants,
      indexes: t.indexes.filter((i) => !out.indexes.has(i.name)),
      policies,
      // Any policy on an app table that is not in the model is drift: permissive policies widen access.
      policySet: { schema: t.spec.schema, table: t.spec.name, prefix: null, names: policies.map((p) => p.name).sort() },
    };
  });
  const rolledBackIndexColumns = STAGE2_TABLES.flatMap((t) => t.indexes)
    .filter((i) => out.indexes.has(i.name) && i.table === "projects" && i.columns.length === 1)
    .map((i) => i.columns[0]);
  const model: Stage2Model = {
    privateSchema: PRIVATE_SCHEMA_SPEC,
    privateSchemaGrants: reviewer
      ? withGrantee(PRIVATE_SCHEMA_GRANTS, reviewer.role.name, ["USAGE"])
      : PRIVATE_SCHEMA_GRANTS,
    tables,
    helper: HELPER,
    helperGrants: HELPER_GRANTS,
    bucket: out.bucket ? null : attachmentsBucket(config.bucket),
    storagePolicies,
    storagePolicySet: { ...STORAGE_POLICY_SET, names: storagePolicies.map((p) => p.name).sort() },
    partnerOrgs,
    normalizations,
    features: { schema: APP_SCHEMA, table: "features", tenants, flags, excluded: excluded.sort(), missing: [] },
    verification: {
      schema: APP_SCHEMA,
      tables: STAGE2_TABLES.map((t) => t.spec.name),
      indexColumns: VERIFIED_PROJECT_INDEX_COLUMNS,
      absentIndexColumns: rolledBackIndexColumns,
      bucket: ATTACHMENTS_BUCKET,
      bucketAbsent: out.bucket,
      storagePolicies: storagePolicies.map((p) => p.name).sort(),
      storagePolicyPrefix: STORAGE_POLICY_PREFIX,
      partnerOrgIds: partnerOrgs.map((o) => String(o.key.id)),
      normalizationAliases: normalizations.map((n) => String(n.key.alias)),
      tenants,
      flags,
      excludedFeatures: excluded.sort(),
    },
    rollback: config.rollback ?? null,
    reviewer,
  };
  const unknown = unknownRollbackNames(config.rollback, seeds, config.features);
  if (unknown.length) throw new ConfigError(unknown);
  return model;
}

/** `grants` with one more managed grantee. */
function withGrantee(spec: GrantsSpec, role: string, privileges: readonly Privilege[]): GrantsSpec {
  return grants(spec.target, { ...spec.privileges, [role]: privileges });
}

/** The rolled-back names, as sets. */
function rollbackOf(rollback: Rollback | undefined) {
  return {
    policies: new Set(rollback?.policies ?? []),
    indexes: new Set(rollback?.indexes ?? []),
    seeds: new Set(rollback?.seeds ?? []),
    bucket: rollback?.bucket ?? false,
  };
}

/** Rolled-back names the model does not have (a typo would otherwise roll back nothing, silently). */
function unknownRollbackNames(
  rollback: Rollback | undefined,
  seeds: PartnerSeeds,
  features: ModelInput["features"],
): string[] {
  if (!rollback) return [];
  const policies = new Set([...STAGE2_TABLES.flatMap((t) => t.policies), ...STORAGE_POLICIES].map((p) => p.name));
  const indexes = new Set(STAGE2_TABLES.flatMap((t) => t.indexes).map((i) => i.name));
  const seedKeys = new Set([
    ...seeds.partner_orgs.map((o) => `partner_org:${o.id}`),
    ...seeds.normalizations.map((n) => `partner_normalization:${n.alias}`),
    ...features.tenants.flatMap((t) => features.flags.map((f) => `features:${t}/${f}`)),
  ]);
  const problems = [
    ...rollback.policies.map((n, i) =>
      policies.has(n) ? "" : `stage2:rollback.policies[${i}]: no policy ${n} in the model`,
    ),
    ...rollback.indexes.map((n, i) =>
      indexes.has(n) ? "" : `stage2:rollback.indexes[${i}]: no index ${n} in the model`,
    ),
    ...rollback.seeds.map((k, i) =>
      seedKeys.has(k) ? "" : `stage2:rollback.seeds[${i}]: ${k} is not in the seed file or the feature rows`,
    ),
  ];
  // A normalization of the file that still points at a rolled-back org would fail on its foreign key.
  for (const n of seeds.normalizations) {
    if (
      rollback.seeds.includes(`partner_org:${n.partner_org}`) &&
      !rollback.seeds.includes(`partner_normalization:${n.alias}`)
    ) {
      problems.push(
        `stage2:rollback.seeds: partner_org:${n.partner_org} is rolled back but partner_normalization:${n.alias} ` +
          "still points at it; roll that back too",
      );
    }
  }
  return problems.filter(Boolean);
}

export type KindName =
  | "Schema"
  | "Role"
  | "Table"
  | "Index"
  | "Function"
  | "Grants"
  | "Policy"
  | "PolicySet"
  | "Bucket"
  | "SeedRow"
  | "FeatureRows";

export interface DesiredObject {
  readonly kind: KindName;
  readonly spec: object;
}

/**
 * Every object in an order that satisfies its dependencies (tables before the helper that reads them,
 * the helper before the policies that call it, policies before the sets that guard them).
 * Used by the break-glass export and by database tests; the engine derives the same order from dependsOn.
 */
export function orderedObjects(model: Stage2Model): DesiredObject[] {
  const reviewer = model.reviewer;
  const objects: DesiredObject[] = [
    ...(reviewer
      ? [{ kind: "Role", spec: reviewer.role } as const, { kind: "Grants", spec: reviewer.schemaGrants } as const]
      : []),
    { kind: "Schema", spec: model.privateSchema },
    { kind: "Grants", spec: model.privateSchemaGrants },
  ];
  for (const t of model.tables) {
    objects.push({ kind: "Table", spec: t.spec }, { kind: "Grants", spec: t.grants });
    for (const index of t.indexes) objects.push({ kind: "Index", spec: index });
  }
  objects.push({ kind: "Function", spec: model.helper }, { kind: "Grants", spec: model.helperGrants });
  if (reviewer) {
    objects.push(
      { kind: "Function", spec: reviewer.bucketReader },
      { kind: "Grants", spec: reviewer.bucketReaderGrants },
    );
  }
  for (const t of model.tables) {
    for (const policy of t.policies) objects.push({ kind: "Policy", spec: policy });
    objects.push({ kind: "PolicySet", spec: policySetResource(t.policySet) });
  }
  if (model.bucket) objects.push({ kind: "Bucket", spec: model.bucket });
  for (const policy of model.storagePolicies) objects.push({ kind: "Policy", spec: policy });
  objects.push({ kind: "PolicySet", spec: policySetResource(model.storagePolicySet) });
  for (const row of [...model.partnerOrgs, ...model.normalizations]) objects.push({ kind: "SeedRow", spec: row });
  objects.push({ kind: "FeatureRows", spec: model.features });
  return objects;
}
