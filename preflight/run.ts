/**
 * Runs the preflight before the program declares any resource, on preview and on up: a failure stops the
 * run before anything is changed. Facts come from read-only catalog queries (nothing is created to test a
 * privilege) and from the Management API.
 */
import type { StackConfig } from "../config/schema";
import type { ManagementApi } from "../transports/management-api";
import type { Transport } from "../transports/transport";
import {
  applyOverride,
  checkBackups,
  checkChangeWindow,
  checkPermissions,
  checkTarget,
  projectRefFromDatabaseUrl,
  type CheckResult,
  type PermissionFacts,
  OVERRIDES,
} from "./checks";

export class PreflightError extends Error {
  constructor(readonly results: readonly CheckResult[]) {
    super(
      "Preflight failed; nothing was changed:\n" +
        results
          .filter((r) => !r.ok)
          .map((r) => ` - ${r.check}: ${r.detail}${overrideHint(r)}`)
          .join("\n"),
    );
    this.name = "PreflightError";
  }
}

function overrideHint(result: CheckResult): string {
  const variable = OVERRIDES[result.check];
  return variable ? ` (emergency override: ${variable}="<reason>", which is logged and reported)` : "";
}

const PERMISSIONS_QUERY = `
select current_user as role,
  (select rolsuper from pg_roles where rolname = current_user) as superuser,
  has_schema_privilege('public', 'CREATE') as "canCreateInPublic",
  case when to_regnamespace('private') is null then has_database_privilege(current_database(), 'CREATE')
       else has_schema_privilege('private', 'CREATE') end as "privateSchemaUsable",
  (pg_has_role((select relowner from pg_class where oid = to_regclass('storage.objects')), 'USAGE')
   or coalesce((current_setting('supautils.policy_grants', true)::jsonb -> current_user) ? 'storage.objects', false))
    as "canManageStoragePolicies",
  coalesce(has_table_privilege(to_regclass('storage.buckets'), 'SELECT, INSERT, UPDATE'), false) as "canWriteBuckets",
  coalesce(has_table_privilege(to_regclass('auth.users'), 'REFERENCES'), false) as "canReferenceAuthUsers"`;

export interface PreflightInput {
  readonly config: StackConfig;
  readonly transport: Transport;
  readonly api?: ManagementApi;
  /** Preview: a closed change window only warns. */
  readonly dryRun: boolean;
  readonly now: Date;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export async function runPreflight(input: PreflightInput): Promise<CheckResult[]> {
  const { config } = input;
  const results: CheckResult[] = [];

  if (config.transport === "direct") {
    const { ref, host } = projectRefFromDatabaseUrl(config.databaseUrl ?? "");
    results.push(checkTarget(config.projectRef, { ref, source: `host ${host}` }));
  } else if (input.api) {
    const project = await input.api.getProject();
    results.push(
      checkTarget(config.projectRef, {
        ref: project.ref ?? project.id,
        source: `Management API project "${project.name}"`,
      }),
    );
  }

  const [facts] = await input.transport.query<PermissionFacts>(PERMISSIONS_QUERY);
  results.push(checkPermissions(facts));

  if (config.preflight.requireBackup) {
    if (!input.api)
      throw new Error("preflight: backups must be checked but no Management API access token is configured");
    results.push(
      applyOverride(
        checkBackups(await input.api.listBackups(), config.preflight.maxBackupAgeHours, input.now),
        input.env,
      ),
    );
  }

  if (config.preflight.changeWindow) {
    const window = applyOverride(checkChangeWindow(config.preflight.changeWindow, input.now), input.env);
    // A preview changes nothing, so it may run outside the window; it still says so.
    results.push(
      input.dryRun && !window.ok ? { ...window, ok: true, detail: `${window.detail} (preview only)` } : window,
    );
  }

  if (results.some((r) => !r.ok)) throw new PreflightError(results);
  return results;
}
