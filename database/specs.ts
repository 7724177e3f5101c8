/**
 * The shapes of the database objects that Stage 2 models. One shape serves three roles:
 *   - the desired state (what the model asks for; expressions written as readable SQL),
 *   - the canonical live state (what introspection reads back; expressions as PostgreSQL re-prints them),
 *   - the Pulumi inputs and outputs of each object's resource.
 * Named collections are maps keyed by name, not arrays, so a diff names the column or constraint that
 * differs instead of an array position.
 */
import { tenantsDigest } from "./stack-config";

export type Privilege =
  "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE" | "REFERENCES" | "TRIGGER" | "EXECUTE" | "USAGE" | "CREATE";

export interface ColumnSpec {
  /** Type as `format_type()` prints it (`text`, `uuid`, `timestamp with time zone`, `bigint`). */
  readonly type: string;
  readonly nullable: boolean;
  /** Default expression, or null. */
  readonly default: string | null;
  /** Identity column: "always", "by default", or null. */
  readonly identity: "always" | "by default" | null;
}

export type ForeignKeyAction = "no action" | "restrict" | "cascade" | "set null" | "set default";

export interface ForeignKeySpec {
  readonly columns: readonly string[];
  /** Schema-qualified referenced table, e.g. `public.projects`. */
  readonly references: string;
  readonly referencedColumns: readonly string[];
  readonly onDelete: ForeignKeyAction;
  /** False while a constraint added NOT VALID has not been validated (an interrupted converge). */
  readonly validated: boolean;
}

export interface TableSpec {
  readonly schema: string;
  readonly name: string;
  readonly columns: Readonly<Record<string, ColumnSpec>>;
  /** Creation order of the columns; informational, never reported as drift (see database/reconcile.ts). */
  readonly columnOrder: readonly string[];
  readonly primaryKey: { readonly name: string; readonly columns: readonly string[] };
  readonly uniques: Readonly<Record<string, { readonly columns: readonly string[] }>>;
  readonly foreignKeys: Readonly<Record<string, ForeignKeySpec>>;
  /** Check constraints by name; the expression inside CHECK (...). */
  readonly checks: Readonly<Record<string, { readonly expression: string }>>;
  readonly rowLevelSecurity: boolean;
}

export interface IndexSpec {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
  /** Partial-index predicate, or null. */
  readonly where: string | null;
  /** An index left invalid by an interrupted CREATE INDEX CONCURRENTLY reads back as false. */
  readonly valid: boolean;
}

export interface FunctionSpec {
  readonly schema: string;
  readonly name: string;
  /** Argument list with names, as `pg_get_function_arguments()` prints it: `p_project_id uuid`. */
  readonly arguments: string;
  readonly returns: string;
  readonly language: "sql" | "plpgsql";
  readonly volatility: "immutable" | "stable" | "volatile";
  readonly securityDefiner: boolean;
  /** The fixed search_path (`proconfig`); '' pins it to nothing, so every name must be qualified. */
  readonly searchPath: string | null;
  readonly body: string;
}

export type PolicyCommand = "all" | "select" | "insert" | "update" | "delete";

export interface PolicySpec {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly command: PolicyCommand;
  readonly permissive: boolean;
  /** Role names, sorted; "public" for PUBLIC. */
  readonly roles: readonly string[];
  readonly using: string | null;
  readonly withCheck: string | null;
}

/** The policies on a table (or those whose names start with `prefix`) are exactly `names`. */
export interface PolicySetSpec {
  readonly schema: string;
  readonly table: string;
  readonly prefix: string | null;
  readonly names: readonly string[];
}

/**
 * A policy set as its resource carries it: the policies the model does not have (none, in the model) by name, and
 * what each lets through, to whom.
 */
export interface PolicySetResourceSpec extends PolicySetSpec {
  readonly unexpected: readonly string[];
  /** By name: a list, so that a policy the model lacks is never dropped when the live set is projected on it. */
  readonly unexpectedTo: readonly {
    readonly name: string;
    readonly command: string;
    readonly roles: readonly string[];
  }[];
}

/** The model's policy set, as its resource carries it: nothing unexpected. */
export function policySetResource(spec: PolicySetSpec): PolicySetResourceSpec {
  return { ...spec, unexpected: [], unexpectedTo: [] };
}

export type GrantTarget =
  | { readonly kind: "table"; readonly schema: string; readonly name: string }
  | { readonly kind: "function"; readonly schema: string; readonly name: string; readonly arguments: string }
  | { readonly kind: "schema"; readonly name: string };

/** Privileges of each managed grantee on one object; grantees not listed are not managed. */
export interface GrantsSpec {
  readonly target: GrantTarget;
  readonly privileges: Readonly<Record<string, readonly Privilege[]>>;
}

export interface SchemaSpec {
  readonly name: string;
}

/**
 * A database role the program owns (the read-only reviewer). Its password never travels in the spec: `password`
 * names the environment variable that holds it, and reads back as that name only while a login with it succeeds.
 */
export interface RoleSpec {
  readonly name: string;
  readonly login: boolean;
  readonly superuser: boolean;
  readonly createDb: boolean;
  readonly createRole: boolean;
  readonly replication: boolean;
  readonly bypassRls: boolean;
  /** Roles it is a member of (their privileges are its own): none, sorted. */
  readonly memberOf: readonly string[];
  /** The environment variable the password comes from (STAGE2_REVIEWER_PASSWORD). */
  readonly password: string;
  /**
   * What the role holds in this database beyond what the model grants it, one sentence each ("privileges on
   * column email of table auth.users", "owns large object 16411", "setting statement_timeout=0"): none, sorted.
   */
  readonly holds: readonly string[];
  /**
   * The objects on which the model's own grants and policies give it powers (RoleGrant), which `holds` leaves out;
   * null in state written before holds were read (database/wire.ts), until the next up records it.
   */
  readonly grantedBy: readonly RoleGrant[] | null;
}

/** An object on which the model grants the role something, managed by that object's own resource. */
export type RoleGrant =
  | { readonly kind: "schema"; readonly name: string }
  | { readonly kind: "table" | "function"; readonly schema: string; readonly name: string }
  | { readonly kind: "policy"; readonly schema: string; readonly table: string; readonly name: string };

export interface BucketSpec {
  /** storage.buckets.id (`id` itself is reserved by Pulumi for the resource id). */
  readonly bucketId: string;
  readonly name: string;
  readonly public: boolean;
  readonly fileSizeLimit: number | null;
  readonly allowedMimeTypes: readonly string[] | null;
}

export type RowValue = string | number | boolean | null;

/** One seed row, owned by its key. */
export interface RowSpec {
  readonly schema: string;
  readonly table: string;
  readonly key: Readonly<Record<string, RowValue>>;
  readonly values: Readonly<Record<string, RowValue>>;
}

/** The longest list of exceptions (missing rows, enabled flags, unlisted seed rows) a status or report carries. */
export const EXCEPTIONS_LISTED = 100;

/**
 * Feature rows that must exist: one per tenant and flag. Their `enabled` value belongs to operators, not to Stage 2.
 * At thousands of tenants the rows themselves never travel through the engine: the spec lists the tenants and
 * flags, and its live state adds only the exceptions (rows missing).
 */
export interface FeatureRowsSpec {
  readonly schema: string;
  readonly table: string;
  /** Sorted. */
  readonly tenants: readonly string[];
  /** Sorted. */
  readonly flags: readonly string[];
  /** "TENANT/FLAG" rows taken out of tenants x flags (a rollback by key). */
  readonly excluded: readonly string[];
  /** "TENANT/FLAG" of the rows that should exist and do not: none in the desired state. */
  readonly missing: readonly string[];
}

/**
 * Feature rows as their resource carries them: the tenant list by name ("2 tenants, sha256 …"), so that a list of
 * thousands is not stored as the resource's inputs and again as its outputs. The provider reads the list itself
 * from the stack configuration (database/stack-config.ts), and refuses to write when the name does not match.
 */
export interface FeatureRowsResourceSpec extends Omit<FeatureRowsSpec, "tenants"> {
  readonly tenants: string;
  /**
   * Outputs only (ObjectKind.outputOnly): the tenants the last write converged, sorted, so that rows of a tenant
   * that leaves the list can still be deleted by key.
   */
  readonly appliedTenants?: readonly string[];
}

/** How a resource names a tenant list: its size, and a digest that changes with any tenant added or removed. */
export function tenantListName(tenants: readonly string[]): string {
  return `${tenants.length} tenant${tenants.length === 1 ? "" : "s"}, sha256 ${tenantsDigest(tenants)}`;
}

/** The model's feature rows, as their resource carries them. */
export function featureRowsResource(spec: FeatureRowsSpec): FeatureRowsResourceSpec {
  return { ...spec, tenants: tenantListName(spec.tenants) };
}
