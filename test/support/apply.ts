/**
 * Applies the Stage 2 model to a database through the same provider code the engine runs, without the
 * engine: for database tests that need the schema in place (RLS, storage policies) but test the database,
 * not Pulumi. Objects are applied in dependency order (model/index.ts orderedObjects).
 */
import { loadSeeds } from "../../config/seeds";
import type { StackConfig } from "../../config/schema";
import * as provider from "../../provider";
import { featureRowsResource, type FeatureRowsSpec } from "../../database/specs";
import { buildModel, orderedObjects, type DesiredObject, type Stage2Model } from "../../model";

export interface AppliedObject {
  readonly kind: string;
  readonly id: string;
  readonly spec: Record<string, unknown>;
  readonly outs: Record<string, unknown>;
}

export function testModel(
  overrides: Partial<Pick<StackConfig, "features" | "bucket" | "rollback" | "reviewer">> = {},
): Stage2Model {
  return buildModel(
    {
      features: overrides.features ?? {
        tenants: ["TELCO"],
        flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"],
      },
      bucket: overrides.bucket ?? { fileSizeLimit: null, allowedMimeTypes: null },
      ...(overrides.rollback ? { rollback: overrides.rollback } : {}),
      ...(overrides.reviewer ? { reviewer: overrides.reviewer } : {}),
    },
    loadSeeds("data/partners.yaml"),
  );
}

/** Points the in-process provider at a database (what configure() does with the stack config and environment). */
export function useDatabase(
  url: string,
  tenants: readonly string[] = ["TELCO"],
  env: Record<string, string> = {},
): void {
  const config: Record<string, unknown> = { "stage2:features": { tenants } };
  provider.configure({ get: (key: string) => config[key] }, { STAGE2_DATABASE_URL: url, ...env });
}

/** An object's spec as its resource declares it (components/): the feature rows name their tenant list. */
export function resourceSpec(object: DesiredObject): Record<string, unknown> {
  return (object.kind === "FeatureRows" ? featureRowsResource(object.spec as FeatureRowsSpec) : object.spec) as Record<
    string,
    unknown
  >;
}

/** `env`: more of the provider's environment (STAGE2_REVIEWER_PASSWORD, for a model with the reviewer). */
export async function applyModel(
  url: string,
  model: Stage2Model = testModel(),
  env: Record<string, string> = {},
): Promise<AppliedObject[]> {
  useDatabase(url, ["TELCO"], env);
  const applied: AppliedObject[] = [];
  for (const object of orderedObjects(model)) {
    const spec = resourceSpec(object);
    const result = await provider.create(object.kind, spec);
    applied.push({ kind: object.kind, id: result.id, spec, outs: result.outs });
  }
  return applied;
}
