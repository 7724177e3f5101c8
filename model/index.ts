/**
 * The whole Stage 2 desired state for one stack, as plain data: what the components turn into resources,
 * what the break-glass export renders as SQL, and what the database tests apply directly.
 */
import type { PartnerSeeds } from "../config/seeds";
import type { StackConfig } from "../config/schema";
import type {
  BucketSpec,
  FeatureRowsSpec,
  FunctionSpec,
  GrantsSpec,
  PolicySetSpec,
  PolicySpec,
  RowSpec,
  SchemaSpec,
} from "../database/specs";
import type { VerificationExpectations } from "../report/verify";
import type { ModelTable } from "./define";
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
  readonly bucket: BucketSpec;
  readonly storagePolicies: readonly PolicySpec[];
  readonly storagePolicySet: PolicySetSpec;
  readonly partnerOrgs: readonly RowSpec[];
  readonly normalizations: readonly RowSpec[];
  readonly features: FeatureRowsSpec;
  readonly verification: VerificationExpectations;
}

type ModelInput = Pick<StackConfig, "features" | "bucket">;

export function buildModel(config: ModelInput, seeds: PartnerSeeds): Stage2Model {
  const partnerOrgs = seeds.partner_orgs.map((o): RowSpec => ({
    schema: APP_SCHEMA,
    table: "partner_org",
    key: { id: o.id },
    values: { label: o.label, kind: o.kind },
  }));
  const normalizations = seeds.normalizations.map((n): RowSpec => ({
    schema: APP_SCHEMA,
    table: "partner_normalization",
    key: { alias: n.alias },
    values: { partner_org_id: n.partner_org },
  }));
  const flags = [...config.features.flags].sort();
  return {
    privateSchema: PRIVATE_SCHEMA_SPEC,
    privateSchemaGrants: PRIVATE_SCHEMA_GRANTS,
    tables: STAGE2_TABLES.map((t) => ({
      ...t,
      // Any policy on an app table that is not in the model is drift: permissive policies widen access.
      policySet: {
        schema: t.spec.schema,
        table: t.spec.name,
        prefix: null,
        names: t.policies.map((p) => p.name).sort(),
      },
    })),
    helper: HELPER,
    helperGrants: HELPER_GRANTS,
    bucket: attachmentsBucket(config.bucket),
    storagePolicies: STORAGE_POLICIES,
    storagePolicySet: STORAGE_POLICY_SET,
    partnerOrgs,
    normalizations,
    features: {
      schema: APP_SCHEMA,
      table: "features",
      present: Object.fromEntries(config.features.tenants.map((t) => [t, flags])),
    },
    verification: {
      schema: APP_SCHEMA,
      tables: STAGE2_TABLES.map((t) => t.spec.name),
      indexColumns: VERIFIED_PROJECT_INDEX_COLUMNS,
      bucket: ATTACHMENTS_BUCKET,
      storagePolicies: STORAGE_POLICY_SET.names,
      storagePolicyPrefix: STORAGE_POLICY_PREFIX,
      partnerOrgIds: seeds.partner_orgs.map((o) => o.id),
      normalizationAliases: seeds.normalizations.map((n) => n.alias),
      tenants: config.features.tenants,
      flags,
    },
  };
}

export type KindName =
  "Schema" | "Table" | "Index" | "Function" | "Grants" | "Policy" | "PolicySet" | "Bucket" | "SeedRow" | "FeatureRows";

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
  const objects: DesiredObject[] = [
    { kind: "Schema", spec: model.privateSchema },
    { kind: "Grants", spec: model.privateSchemaGrants },
  ];
  for (const t of model.tables) {
    objects.push({ kind: "Table", spec: t.spec }, { kind: "Grants", spec: t.grants });
    for (const index of t.indexes) objects.push({ kind: "Index", spec: index });
  }
  objects.push({ kind: "Function", spec: model.helper }, { kind: "Grants", spec: model.helperGrants });
  for (const t of model.tables) {
    for (const policy of t.policies) objects.push({ kind: "Policy", spec: policy });
    objects.push({ kind: "PolicySet", spec: { ...t.policySet, unexpected: [] } });
  }
  objects.push({ kind: "Bucket", spec: model.bucket });
  for (const policy of model.storagePolicies) objects.push({ kind: "Policy", spec: policy });
  objects.push({ kind: "PolicySet", spec: { ...model.storagePolicySet, unexpected: [] } });
  for (const row of [...model.partnerOrgs, ...model.normalizations]) objects.push({ kind: "SeedRow", spec: row });
  objects.push({ kind: "FeatureRows", spec: model.features });
  return objects;
}
