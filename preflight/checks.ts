/**
 * The runbook's change-control checklist as pure decisions: right project, sufficient role, a recent
 * backup (or PITR), inside the change window. Each returns a CheckResult; run.ts gathers the facts.
 */
import type { BackupsRecord } from "../transports/management-api";

export interface CheckResult {
  readonly check: "target" | "permissions" | "backups" | "change-window";
  readonly ok: boolean;
  readonly detail: string;
  /** Set when an operator overrode a failing check, with the reason they gave. */
  readonly overriddenBecause?: string;
}

/** The project a connection string points at: db.<ref>.supabase.co, or the pooler user postgres.<ref>. */
export function projectRefFromDatabaseUrl(databaseUrl: string): { ref: string | null; host: string } {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return { ref: null, host: "(unparseable URL)" };
  }
  const host = url.hostname;
  const direct = /^db\.([a-z]{20})\.supabase\.co$/.exec(host);
  if (direct) return { ref: direct[1], host };
  const poolerUser = /^[a-z_]+\.([a-z]{20})$/.exec(decodeURIComponent(url.username));
  if (poolerUser && /\.pooler\.supabase\.com$/.test(host)) return { ref: poolerUser[1], host };
  if (host === "127.0.0.1" || host === "localhost" || host === "[::1]") return { ref: "local", host };
  return { ref: null, host };
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
      "nothing was changed. Fix stage2:databaseUrl or stage2:projectRef.",
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
    source: `Management API project "${project.name}"`,
  });
  if (!target.ok || project.status === undefined || project.status === "ACTIVE_HEALTHY") return target;
  return {
    check: "target",
    ok: false,
    detail:
      `project ${expectedRef} ("${project.name}") is ${project.status}, not ACTIVE_HEALTHY; nothing was changed. ` +
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

export function checkBackups(backups: BackupsRecord, maxAgeHours: number, now: Date): CheckResult {
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

/** Environment variables that override a failing check; the value is the reason, logged and reported. */
export const OVERRIDES: Partial<Record<CheckResult["check"], string>> = {
  backups: "STAGE2_OVERRIDE_BACKUP_CHECK",
  "change-window": "STAGE2_OVERRIDE_CHANGE_WINDOW",
};

export function applyOverride(result: CheckResult, env: Readonly<Record<string, string | undefined>>): CheckResult {
  const variable = OVERRIDES[result.check];
  const reason = variable ? env[variable]?.trim() : undefined;
  if (result.ok || !reason) return result;
  return { ...result, ok: true, overriddenBecause: reason };
}
