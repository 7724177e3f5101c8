/**
 * The runbook's change-control checklist as pure decisions: right project, sufficient role, a recent
 * backup (or PITR), inside the change window. Each returns a CheckResult; run.ts gathers the facts.
 */
import { isLoopback } from "../config/database-url";
import { printable } from "../config/printable";
import { changedFields, project } from "../database/reconcile";
import { planTableChanges } from "../database/kinds/tables";
import type { RowSpec, TableSpec } from "../database/specs";
import type { BackupsRecord } from "../transports/management-api";

export interface CheckResult {
  readonly check: "target" | "permissions" | "schema" | "seeds" | "backups" | "change-window" | "teardown";
  readonly ok: boolean;
  readonly detail: string;
  /** Set when an operator overrode a failing check, with the reason they gave. */
  readonly overriddenBecause?: string;
}

/**
 * The project a connection goes to: db.<ref>.supabase.co, or the pooler user <role>.<ref>. Reads the host and
 * user the driver will use (config/database-url.ts), never the URL text again.
 */
export function projectRefOf(target: { readonly host: string; readonly user: string }): string | null {
  const direct = /^db\.([a-z]{20})\.supabase\.co$/.exec(target.host);
  if (direct) return direct[1];
  const poolerUser = /^[a-z0-9_]+\.([a-z]{20})$/.exec(target.user);
  if (poolerUser && /\.pooler\.supabase\.com$/.test(target.host)) return poolerUser[1];
  if (isLoopback(target.host)) return "local";
  return null;
}

/**
 * A self-hosted database is known by its cluster's identity, `pg_control_system().system_identifier`, fixed
 * when the cluster was created: a copy restored elsewhere, or another cluster behind the same host name,
 * answers with another one.
 */
export function checkSystemIdentifier(expected: string, actual: string, source: string): CheckResult {
  return actual === expected
    ? { check: "target", ok: true, detail: `connected to the self-hosted cluster ${expected} (${source})` }
    : {
        check: "target",
        ok: false,
        detail:
          `stage2:target.systemIdentifier is ${expected} but ${source} is the cluster ${actual}; nothing was changed. ` +
          "If this is the right cluster (a new stack), set stage2:target.systemIdentifier to " +
          `${actual}; otherwise fix STAGE2_DATABASE_URL.`,
      };
}

/** Changes the converge would refuse (a column type, identity or primary key that differs), found before any. */
/** `unchecked`: what this role could not find out (the reviewer cannot read most tables); `up` checks it. */
export function checkSchemaCompatibility(refusals: readonly string[], unchecked: readonly string[] = []): CheckResult {
  const left = unchecked.length ? `; left to up, which checks it before any change: ${unchecked.join("; ")}` : "";
  return refusals.length
    ? {
        check: "schema",
        ok: false,
        detail:
          "the live tables differ from the model in ways Stage 2 never changes by itself:\n   - " +
          refusals.join("\n   - "),
      }
    : {
        check: "schema",
        ok: true,
        detail: `no live table differs from the model in a column type, identity or key${left}`,
      };
}

/**
 * What converging a live table to the model would refuse (tables.ts planTableChanges): found here, before any
 * object is created, instead of by the table's own step in the middle of a run.
 */
export function tableRefusals(live: TableSpec, model: TableSpec): string[] {
  const projected = project(live, undefined, model);
  return planTableChanges(projected, model, changedFields(projected, model)).refused.map(
    (refusal) => `table ${model.schema}.${model.name}: ${refusal}`,
  );
}

/** Columns of the model that a live table lacks: `up` adds them (see addedColumnRefusal). */
export function addedColumns(
  live: TableSpec,
  model: TableSpec,
): { name: string; column: TableSpec["columns"][string] }[] {
  return Object.entries(model.columns)
    .filter(([name]) => !(name in live.columns))
    .map(([name, column]) => ({ name, column }));
}

/**
 * Why a column cannot be added to a table that holds rows as the model has it, or undefined: NOT NULL
 * without a default has no value for the existing rows, and a default PostgreSQL must compute per row
 * (gen_random_uuid(), clock_timestamp()) rewrites the whole table under ACCESS EXCLUSIVE, which stops the
 * application for the length of the rewrite. `rewrites`: what the probe saw (preflight/run.ts).
 */
export function addedColumnRefusal(
  table: TableSpec,
  name: string,
  column: TableSpec["columns"][string],
  rewrites: boolean,
): string | undefined {
  const subject = `table ${table.schema}.${table.name}: new column ${name}`;
  if (rewrites) {
    return (
      `${subject}: its default ${column.default} is computed per row, so adding it rewrites the table under an ` +
      "exclusive lock; add the column without that default (nullable), backfill it in batches, then set the " +
      "default and NOT NULL in a later change"
    );
  }
  if (!column.nullable && column.default === null && column.identity === null) {
    return `${subject} is NOT NULL without a default, and the table's rows have no value for it; add it nullable, backfill it, then set NOT NULL`;
  }
  return undefined;
}

/**
 * Seed rows whose values another row holds under a unique key (partner_org's label): the upsert of one row
 * would fail on the other mid-run (SQLSTATE 23505). A swap of two labels, an id renamed with its label kept,
 * or a label taken by a row the file does not list. Found before any change, with the way through.
 */
export function seedConflicts(
  table: TableSpec,
  desired: readonly RowSpec[],
  live: readonly Record<string, unknown>[],
): string[] {
  const keyOf = (row: Record<string, unknown>, columns: readonly string[]) =>
    JSON.stringify(columns.map((c) => row[c] ?? null));
  const keyColumns = table.primaryKey.columns;
  const wanted = new Map(desired.map((row) => [keyOf(row.key, keyColumns), { ...row.key, ...row.values }]));
  const conflicts: string[] = [];
  for (const [name, unique] of Object.entries(table.uniques)) {
    const holder = new Map(live.map((row) => [keyOf(row, unique.columns), row]));
    for (const [id, row] of wanted) {
      const held = holder.get(keyOf(row, unique.columns));
      if (!held || keyOf(held, keyColumns) === id) continue;
      const value = unique.columns.map((c) => `${c} ${JSON.stringify(row[c])}`).join(", ");
      const who = (r: Record<string, unknown>) => keyColumns.map((c) => `${c}=${JSON.stringify(r[c])}`).join(", ");
      const holderWanted = wanted.get(keyOf(held, keyColumns));
      conflicts.push(
        holderWanted
          ? `${table.schema}.${table.name}: ${value} moves from (${who(held)}) to (${who(row)}) in one run, which ` +
              `the unique key ${name} refuses half-way. Do it in two runs: give (${who(held)}) a temporary value ` +
              "in the seed file and run up, then write the final values"
          : `${table.schema}.${table.name}: ${value} of (${who(row)}) is held by the row (${who(held)}), which the ` +
              `seed file does not list (the unique key ${name} allows one). Free it first: remove or rename that ` +
              "row (if the file listed it until now, run up without the new row first), then add the new one",
      );
    }
  }
  return conflicts;
}

/** Seed changes the unique keys would stop half-way (see seedConflicts). */
export function checkSeeds(conflicts: readonly string[]): CheckResult {
  return conflicts.length
    ? { check: "seeds", ok: false, detail: conflicts.join("; ") }
    : { check: "seeds", ok: true, detail: "every seed row can be written without breaking a unique key" };
}

export function checkTarget(expectedRef: string, actual: { ref: string | null; source: string }): CheckResult {
  if (actual.ref === expectedRef) {
    return { check: "target", ok: true, detail: `connected to project ${expectedRef} (${actual.source})` };
  }
  if (actual.ref === null) {
    return {
      check: "target",
      ok: false,
      detail:
        `cannot tell which project ${actual.source} belongs to; stage2:projectRef is ${expectedRef}. ` +
        "Use the project's direct host (db.<ref>.supabase.co) or its pooler user (postgres.<ref>).",
    };
  }
  return {
    check: "target",
    ok: false,
    detail:
      `stage2:projectRef is ${expectedRef} but the connection goes to project ${actual.ref} (${actual.source}); ` +
      "nothing was changed. Fix STAGE2_DATABASE_URL or stage2:projectRef.",
  };
}

/**
 * Over the Management API the project is the one the API answers for: its record must carry the configured
 * ref, and the project must be up (a paused or restoring project cannot take the changes).
 */
export function checkProjectRecord(
  expectedRef: string,
  project: { readonly id: string; readonly ref?: string; readonly name: string; readonly status?: string },
): CheckResult {
  const target = checkTarget(expectedRef, {
    ref: project.ref ?? project.id ?? null,
    source: `Management API project "${printable(project.name, 100)}"`,
  });
  if (!target.ok || project.status === undefined || project.status === "ACTIVE_HEALTHY") return target;
  return {
    check: "target",
    ok: false,
    detail:
      `project ${expectedRef} ("${printable(project.name, 100)}") is ${printable(project.status, 40)}, not ACTIVE_HEALTHY; nothing was changed. ` +
      "Restore or unpause it in the dashboard and run again.",
  };
}

export interface PermissionFacts {
  readonly role: string;
  readonly superuser: boolean;
  readonly canCreateInPublic: boolean;
  readonly privateSchemaUsable: boolean;
  readonly canManageStoragePolicies: boolean;
  readonly canWriteBuckets: boolean;
  readonly canReferenceAuthUsers: boolean;
}

export function checkPermissions(f: PermissionFacts): CheckResult {
  const missing: string[] = [];
  if (f.superuser) missing.push(`${f.role} is a superuser; connect as postgres, the role Studio's SQL editor uses`);
  if (!f.canCreateInPublic) missing.push("CREATE on schema public");
  if (!f.privateSchemaUsable)
    missing.push("CREATE on the database (to create schema private) or ownership of schema private");
  if (!f.canManageStoragePolicies)
    missing.push("policy management on storage.objects (ownership or supautils.policy_grants)");
  if (!f.canWriteBuckets) missing.push("SELECT, INSERT and UPDATE on storage.buckets");
  if (!f.canReferenceAuthUsers)
    missing.push("REFERENCES on auth.users (foreign keys of projects, memberships, profiles)");
  return missing.length
    ? { check: "permissions", ok: false, detail: `role ${f.role} lacks: ${missing.join("; ")}` }
    : {
        check: "permissions",
        ok: true,
        detail: `role ${f.role} can create the schema, policies on storage.objects and the bucket`,
      };
}

/** What the read-only reviewer needs for a preview (model/reviewer.ts grants it on the first `up`). */
export interface ReviewerFacts {
  readonly role: string;
  readonly canReadBuckets: boolean;
  /** Tables of REVIEWER_READS that exist and that it cannot SELECT. */
  readonly unreadableTables: readonly string[];
}

/**
 * Connected as the stack's reviewer: a preview may read with it, an `up` (or a destroy) never runs with it.
 * `writing`: the run would change the database.
 */
export function checkReviewer(f: ReviewerFacts, writing: boolean): CheckResult {
  if (writing) {
    return {
      check: "permissions",
      ok: false,
      detail:
        `STAGE2_DATABASE_URL connects as ${f.role}, the stack's read-only reviewer role: it reads for previews and ` +
        "drift checks, and cannot change the database. Run `up` with the owner's URL (postgres; in CI the " +
        "approval-gated up workflow's STAGE2_<STACK>_DATABASE_URL); nothing was changed",
    };
  }
  const missing = [
    ...(f.canReadBuckets ? [] : ["EXECUTE on private.stage2_buckets() (storage.buckets for the reviewer)"]),
    ...f.unreadableTables.map((t) => `SELECT on public.${t}`),
  ];
  return missing.length
    ? {
        check: "permissions",
        ok: false,
        detail:
          `role ${f.role} is the stack's reviewer but lacks: ${missing.join("; ")}. ` +
          "Run `pulumi up` once with the owner's URL: it grants them",
      }
    : {
        check: "permissions",
        ok: true,
        detail: `role ${f.role} is the stack's read-only reviewer: this run reads, and up is refused with it`,
      };
}

/** `via` names the Management API host that answered, so the line says whom it trusted. */
export function checkBackups(backups: BackupsRecord, maxAgeHours: number, now: Date, via: string): CheckResult {
  const result = backupsVerdict(backups, maxAgeHours, now);
  return { ...result, detail: `${result.detail} (asked ${via})` };
}

/**
 * A self-hosted database's backups, as the stack's `preflight.backupCommand` judges them: exit 0 means a backup
 * Stage 2 may rely on exists; its first line of output says which.
 */
export function checkBackupCommand(command: string, outcome: { code: number | null; output: string }): CheckResult {
  const said = printable(outcome.output.trim().split("\n")[0] ?? "", 200);
  return outcome.code === 0
    ? {
        check: "backups",
        ok: true,
        detail: `${said || "the backup command succeeded"} (stage2:preflight.backupCommand)`,
      }
    : {
        check: "backups",
        ok: false,
        detail:
          `stage2:preflight.backupCommand \`${printable(command, 100)}\` ` +
          `${outcome.code === null ? "did not finish" : `exited ${outcome.code}`}${said ? `: ${said}` : ""}`,
      };
}

/** A prod stack that checks no backup says so on every run, with the reason its configuration gives. */
export function backupsWaived(reason: string): CheckResult {
  return {
    check: "backups",
    ok: true,
    detail: `not checked: stage2:preflight.backupWaiver says "${printable(reason, 200)}"`,
  };
}

function backupsVerdict(backups: BackupsRecord, maxAgeHours: number, now: Date): CheckResult {
  if (backups.pitr_enabled) return { check: "backups", ok: true, detail: "point-in-time recovery is enabled" };
  const completed = backups.backups
    .filter((b) => b.status === "COMPLETED")
    .map((b) => new Date(b.inserted_at))
    .filter((d) => !Number.isNaN(d.getTime()))
    .sort((a, b) => b.getTime() - a.getTime());
  if (!completed.length) {
    return { check: "backups", ok: false, detail: "PITR is off and the project has no completed backup" };
  }
  const ageHours = (now.getTime() - completed[0].getTime()) / 3_600_000;
  return ageHours <= maxAgeHours
    ? {
        check: "backups",
        ok: true,
        detail: `latest completed backup ${completed[0].toISOString()} (${ageHours.toFixed(1)} h old)`,
      }
    : {
        check: "backups",
        ok: false,
        detail: `PITR is off and the latest completed backup is ${ageHours.toFixed(1)} h old (limit ${maxAgeHours} h)`,
      };
}

export interface ChangeWindow {
  readonly timezone: string;
  readonly days: readonly string[];
  readonly start: string;
  readonly end: string;
}

/** Weekday and HH:MM of `now` in the window's time zone. */
function localTime(now: Date, timezone: string): { day: string; hhmm: string } {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: timezone,
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(now);
  const part = (type: string): string => parts.find((p) => p.type === type)?.value ?? "";
  return { day: part("weekday").toLowerCase().slice(0, 3), hhmm: `${part("hour")}:${part("minute")}` };
}

export function checkChangeWindow(window: ChangeWindow, now: Date): CheckResult {
  const { day, hhmm } = localTime(now, window.timezone);
  const inside = window.days.includes(day) && hhmm >= window.start && hhmm < window.end;
  const describe = `${window.days.join(",")} ${window.start}-${window.end} ${window.timezone}`;
  return inside
    ? { check: "change-window", ok: true, detail: `inside the change window (${describe})` }
    : {
        check: "change-window",
        ok: false,
        detail: `now is ${day} ${hhmm} ${window.timezone}, outside the change window (${describe})`,
      };
}

/** Set to the reason, it lets a staging stack be torn down (`pulumi destroy`); logged. */
export const ALLOW_TEARDOWN = "STAGE2_ALLOW_DESTROY";

/**
 * Whether the stack may be torn down (`pulumi destroy`, or a --target-dependents that reaches the report): the
 * policies, indexes, grants, seeds and bucket would go, and with them the API's access rules. Production
 * never: a destroy is not a rollback (npm run rollback removes one object, through the same preflight as an up).
 * Staging when an operator says why. The local stack freely.
 */
export function checkTeardown(environment: string, env: Readonly<Record<string, string | undefined>>): CheckResult {
  const reason = env[ALLOW_TEARDOWN]?.trim();
  if (environment === "prod") {
    return {
      check: "teardown",
      ok: false,
      detail:
        "this is a production stack (stage2:environment prod), which Stage 2 never tears down; nothing was " +
        "deleted. To remove one object use `npm run rollback`; to retire the stack, change stage2:environment " +
        "in a reviewed change first.",
    };
  }
  if (environment === "local") return { check: "teardown", ok: true, detail: "the local stack may be torn down" };
  return reason
    ? {
        check: "teardown",
        ok: true,
        detail: `tearing down a ${environment} stack`,
        overriddenBecause: printable(reason, 300),
      }
    : {
        check: "teardown",
        ok: false,
        detail:
          `tearing down a ${environment} stack drops its policies, indexes, grants, seeds and bucket; nothing was ` +
          `deleted. To confirm, run it again with ${ALLOW_TEARDOWN}="<reason>" (the reason is logged).`,
      };
}

/** Environment variables that override a failing check; the value is the reason, logged and reported. */
export const OVERRIDES: Partial<Record<CheckResult["check"], string>> = {
  backups: "STAGE2_OVERRIDE_BACKUP_CHECK",
  "change-window": "STAGE2_OVERRIDE_CHANGE_WINDOW",
};

export function applyOverride(result: CheckResult, env: Readonly<Record<string, string | undefined>>): CheckResult {
  const variable = OVERRIDES[result.check];
  const reason = variable ? env[variable]?.trim() : undefined;
  if (result.ok || !reason) return result;
  // Shown on terminals and CI logs, and kept in the state: never raw (config/printable.ts).
  return { ...result, ok: true, overriddenBecause: printable(reason, 300) };
}
