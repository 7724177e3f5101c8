/**
 * Runs the preflight before the program declares any resource, on preview and on up: a failure stops the
 * run before anything is changed. Facts come from read-only catalog queries (nothing is created to test a
 * privilege) and from the Management API.
 */
import { OperatorError } from "../config/errors";
import type { StackConfig } from "../config/schema";
import type { ManagementApi } from "../transports/management-api";
import type { Transport } from "../transports/transport";
import {
  applyOverride,
  checkBackups,
  checkChangeWindow,
  checkPermissions,
  checkProjectRecord,
  checkTarget,
  projectRefFromDatabaseUrl,
  type CheckResult,
  type PermissionFacts,
  OVERRIDES,
} from "./checks";

/** A refused preflight: the failed checks, each with its fix. */
export class PreflightError extends OperatorError {
  constructor(
    readonly results: readonly CheckResult[],
    unfinished?: string,
  ) {
    super(
      "PreflightError",
      unfinished !== undefined
        ? `Preflight could not finish; nothing was changed: ${unfinished}`
        : "Preflight failed; nothing was changed:\n" +
            results
              .filter((r) => !r.ok)
              .map((r) => ` - ${r.check}: ${r.detail}${overrideHint(r)}`)
              .join("\n"),
    );
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
  try {
    return await gatherAndDecide(input);
  } catch (error) {
    if (error instanceof PreflightError) throw error;
    // The API or the database could not answer a question (401, 404, unreachable...): the message says which.
    throw new PreflightError([], error instanceof Error ? error.message : String(error));
  }
}

async function gatherAndDecide(input: PreflightInput): Promise<CheckResult[]> {
  const { config } = input;
  const results: CheckResult[] = [];

  if (config.transport === "direct") {
    const { ref, host } = projectRefFromDatabaseUrl(config.databaseUrl ?? "");
    results.push(checkTarget(config.projectRef, { ref, source: `host ${host}` }));
  } else {
    if (!input.api) throw new Error("transport management-api needs stage2:accessToken to reach the API");
    results.push(checkProjectRecord(config.projectRef, await input.api.getProject()));
  }
  // On the wrong project every other answer is about the wrong database: stop before asking it anything.
  if (!results[0].ok) throw new PreflightError(results);

  const [facts] = await input.transport.query<PermissionFacts>(PERMISSIONS_QUERY, [], { readOnly: true });
  results.push(checkPermissions(facts));

  if (config.preflight.requireBackup) {
    if (!input.api) {
      throw new Error(
        "backups must be checked but stage2:accessToken is not set; " +
          "pulumi config set --secret stage2:accessToken sbp_...",
      );
    }
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
