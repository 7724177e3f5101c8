/**
 * Stage 2 of the Projects/Okta RBAC rollout on Supabase, as code (../shared/spec/stage2-runbook.md).
 *
 *   pulumi preview   change review; with `options.refresh: always` (Pulumi.yaml) it is also the drift check
 *   pulumi up        converges the database, adopting what a hand-run bootstrap already created
 *   stack outputs    the runbook's verification capture, computed from the live database
 *
 * Order of a run: validate config and seed data -> preflight (right project, role, backups, window) ->
 * declare the model -> the engine converges it -> the report is recomputed from the live database.
 */
import * as pulumi from "@pulumi/pulumi";
import { AttachmentsStorage, PartnerSeeds, Stage2Database, TenantFeatures, VerificationReport } from "./components";
import { connectionOf } from "./config/connection";
import { loadStackConfig } from "./config/load";
import type { StackConfig } from "./config/schema";
import { loadSeeds } from "./config/seeds";
import type { DatabaseObject } from "./database/resource";
import { buildModel } from "./model";
import { runPreflight } from "./preflight/run";
import { allOk, checksOf } from "./report/verify";
import { openTransport } from "./transports";
import { ManagementApi } from "./transports/management-api";

async function preflight(config: StackConfig) {
  const transport = openTransport(connectionOf(config));
  const api = config.accessToken
    ? new ManagementApi({
        projectRef: config.projectRef,
        accessToken: config.accessToken,
        apiUrl: config.managementApiUrl,
      })
    : undefined;
  try {
    const results = await runPreflight({
      config,
      transport,
      api,
      dryRun: pulumi.runtime.isDryRun(),
      now: new Date(),
      env: process.env,
    });
    for (const r of results) {
      if (r.overriddenBecause) pulumi.log.warn(`preflight ${r.check} OVERRIDDEN (${r.overriddenBecause}): ${r.detail}`);
      else pulumi.log.info(`preflight ${r.check}: ${r.detail}`);
    }
    return results;
  } finally {
    await transport.close();
  }
}

export = async () => {
  const config = loadStackConfig();
  const seeds = loadSeeds(config.seedsFile);
  const checks = await preflight(config);
  const model = buildModel(config, seeds);

  const database = new Stage2Database("stage2", { model, protectTables: config.protectTables });
  const table = (name: string) => database.tables[`public.${name}`].table;
  const storage = new AttachmentsStorage("attachments", {
    model,
    dependsOn: [table("attachments_meta"), database.helper],
  });
  const seedRows = new PartnerSeeds("partner-seeds", {
    model,
    dependsOn: [table("partner_org"), table("partner_normalization")],
  });
  const features = new TenantFeatures("features", { spec: model.features, dependsOn: [table("features")] });
  const verification = new VerificationReport("verification", {
    expectations: model.verification,
    dependsOn: [
      ...database.resources,
      ...storage.resources,
      ...seedRows.resources,
      features.rows,
    ] as DatabaseObject<object>[],
  });

  const report = verification.report;
  const field = <K extends keyof NonNullable<pulumi.Unwrap<typeof report>>>(key: K) =>
    report.apply((r) => r?.[key] ?? null);
  return {
    // The runbook's verification capture, field for field.
    tables_ok: field("tables_ok"),
    indexes_ok: field("indexes_ok"),
    bucket_ok: field("bucket_ok"),
    storage_policies_ok: field("storage_policies_ok"),
    partner_org_count: field("partner_org_count"),
    partner_org_samples: field("partner_org_samples"),
    partner_normalization_count: field("partner_normalization_count"),
    features_present: field("features_present"),
    all_ok: report.apply((r) => r !== undefined && allOk(checksOf(r))),
    checked_at: verification.checkedAt,
    target: verification.target,
    stack: pulumi.getStack(),
    preflight: checks.map((c) => ({
      check: c.check,
      ok: c.ok,
      detail: c.detail,
      overridden_because: c.overriddenBecause ?? null,
    })),
  };
};
