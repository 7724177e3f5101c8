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
import type { DatabaseObject } from "./components/resource";
import { OperatorError } from "./config/errors";
import { buildModel, orderedObjects, type Stage2Model } from "./model";
import { modelViolations } from "./policy/guardrails";
import { runPreflight } from "./preflight/run";
import { Db } from "./database/db";
import { runVerification } from "./report/kind";
import { adoptionRecord } from "./report/plan";
import { reportOk, reportSchema, rollbackText, type VerificationReport as Report } from "./report/verify";
import { describeConnection, managementApiFor, openTransport } from "./transports";

async function preflight(config: StackConfig, model: Stage2Model) {
  const transport = openTransport(connectionOf(config));
  const api = managementApiFor(config);
  try {
    const results = await runPreflight({
      config,
      model,
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

/**
 * A run that fails or is cancelled must not leave the previous run's `all_ok: true` in the stack's outputs. The
 * engine keeps the outputs the run registered last, laid over the previous ones when the run failed
 * (pulumi/pulumi resource/deploy/step_executor.go, deployment_executor.go), and the SDK registers the stack's
 * outputs once more, empty, when the program throws (runtime/stack.js initialize). So the program registers
 * them itself: first that the report is not current, and last, once everything is known, the report; the
 * SDK's own registration is turned off by the guard it checks (resource.js registerOutputs: `__registered`,
 * @pulumi/pulumi pinned at 3.248.0). Returns the last registration. Previews change no output: nothing to do.
 */
function registerStackOutputsOurselves(): (outputs: pulumi.Inputs) => void {
  const stack = pulumi.runtime.getStackResource();
  if (pulumi.runtime.isDryRun() || !stack) return () => undefined;
  pulumi.runtime.registerResourceOutputs(stack, {
    all_ok: false,
    // Only here: a run that completes replaces all outputs, and this key goes with them.
    report: "not current: the last update did not finish; `npm run report` checks the live database",
  });
  (stack as unknown as { __registered: boolean }).__registered = true;
  return (outputs) => pulumi.runtime.registerResourceOutputs(stack, outputs);
}

/** The verification report, computed now from the live database, through a connection of the program's own. */
async function verifyNow(config: StackConfig, model: Stage2Model) {
  const transport = openTransport(connectionOf(config));
  try {
    return await runVerification(new Db(transport, config.ddl), model);
  } finally {
    await transport.close();
  }
}

export = async () => {
  const registerOutputs = registerStackOutputsOurselves();
  const config = loadStackConfig(pulumi.runtime.isDryRun() ? "read" : "change");
  const model = buildModel(config, loadSeeds(config.seedsFile));
  const violations = modelViolations(orderedObjects(model), {
    name: pulumi.getStack(),
    environment: config.environment,
    protectTables: config.protectTables,
  });
  if (violations.length) {
    throw new OperatorError(
      "GuardrailError",
      `The model breaks a Stage 2 guardrail (nothing was changed):\n - ${violations.join("\n - ")}`,
    );
  }
  const checks = await preflight(config, model);
  if (model.rollback) pulumi.log.warn(`rollback in effect (stage2:rollback): ${rollbackText(model.rollback)}`);

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
  const objects = [
    ...database.resources,
    ...storage.resources,
    ...seedRows.resources,
    features.rows,
  ] as DatabaseObject<object>[];
  const verification = new VerificationReport("verification", {
    expectations: model.verification,
    dependsOn: objects,
    verifyNow: () => verifyNow(config, model),
    target: describeConnection(connectionOf(config)),
  });

  const report = verification.report;
  // The runbook's verification capture, field for field (report/verify.ts reportSchema), and whether it all
  // passed. No timestamp among them: a preview that finds nothing to do leaves every output as it was.
  const fields = Object.fromEntries(
    Object.keys(reportSchema.shape).map((key) => [key, report.apply((r) => r?.[key as keyof Report] ?? null)]),
  );
  const outputs = {
    ...fields,
    // report/verify.ts reportOk: what all_ok means, computed as `npm run report` computes it.
    all_ok: report.apply((r) => r !== undefined && reportOk(r, model.verification)),
    rolled_back: model.rollback,
    // How the objects entered the stack: created, adopted as is, or converged, dropped and renamed by name.
    adoption: pulumi.all(objects.map((o) => o.status)).apply(adoptionRecord),
    target: verification.target,
    stack: pulumi.getStack(),
    preflight: checks.map((c) => ({
      check: c.check,
      ok: c.ok,
      detail: c.detail,
      overridden_because: c.overriddenBecause ?? null,
    })),
  };
  registerOutputs(outputs);
  return outputs;
};
