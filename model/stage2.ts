/**
 * The Stage 2 schema: the runbook's 13 tables for the multi-tenant Projects module (Okta sign-in,
 * role-based access), the helper `private.using_rls_for_project()`, RLS policies, indexes and grants.
 *
 * Access model (documented in docs/architecture.md):
 *   - A user belongs to one tenant (user_profiles.tenant_id) and holds tenant roles (user_roles).
 *   - May act on a project: a member of it (project_membership), or a `tenant_admin` of its tenant.
 *     That rule lives in one place, the helper, and every project-scoped policy calls it.
 *   - Tenant-scoped reference data (directories, features) is readable within the caller's tenant.
 *   - Partner reference data is readable by every signed-in user; `staging_imports` by no API role.
 *   - Writes to memberships, profiles, roles, directories and features go through service_role (back office).
 * Every expression qualifies its names: the helper runs with an empty search_path.
 */
import type { FunctionSpec, GrantsSpec, PolicySpec, Privilege, SchemaSpec } from "../database/specs";
import { column as c, grants, index, policy, tableSpec, type ModelTable, type TableDef } from "./define";

export const APP_SCHEMA = "public";
/** Not exposed through the Data API, so the SECURITY DEFINER helper cannot be called as an RPC. */
export const PRIVATE_SCHEMA = "private";

export const HELPER: FunctionSpec = {
  schema: PRIVATE_SCHEMA,
  name: "using_rls_for_project",
  arguments: "p_project_id uuid",
  returns: "boolean",
  language: "sql",
  volatility: "stable",
  securityDefiner: true,
  searchPath: "",
  body: `
  select exists (
    select 1
    from public.project_membership m
    where m.project_id = p_project_id
      and m.user_id = (select auth.uid())
  ) or exists (
    select 1
    from public.projects p
    join public.user_roles r on r.tenant_id = p.tenant_id
    where p.id = p_project_id
      and r.user_id = (select auth.uid())
      and r.role = 'tenant_admin'
  )
`,
};

/** `private.using_rls_for_project(<column>)`: the single membership check every project policy uses. */
export function mayActOn(projectIdColumn: string): string {
  return `${PRIVATE_SCHEMA}.${HELPER.name}(${projectIdColumn})`;
}

/** Rows of the caller's own tenant (read from the caller's profile, which RLS lets them see). */
const CALLER_TENANT =
  "tenant_id in (select p.tenant_id from public.user_profiles p where p.user_id = (select auth.uid()))";
const CALLER_IS_SELF = "user_id = (select auth.uid())";

const TENANT_ID_CHECK = "tenant_id ~ '^[A-Z][A-Z0-9_]{1,31}$'";
const now = "now()";
const uuid = "gen_random_uuid()";

const ALL_TABLE_PRIVILEGES: Privilege[] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];
const READ: Privilege[] = ["SELECT"];
const READ_WRITE: Privilege[] = ["SELECT", "INSERT", "UPDATE", "DELETE"];

type Access = "read-write" | "read" | "none";

interface TableModelDef extends TableDef {
  /** What the `authenticated` role may do (RLS decides which rows). */
  readonly access: Access;
  /** Columns to index beyond the primary key: Stage 2 filter columns and every column a policy filters on. */
  readonly indexes: readonly (readonly string[])[];
  readonly policies: readonly PolicySpec[];
}

function projectScopedPolicies(table: string): PolicySpec[] {
  const check = mayActOn("project_id");
  return [
    policy(APP_SCHEMA, table, `${table}_select`, "select", { using: check }),
    policy(APP_SCHEMA, table, `${table}_insert`, "insert", { withCheck: check }),
    policy(APP_SCHEMA, table, `${table}_update`, "update", { using: check, withCheck: check }),
    policy(APP_SCHEMA, table, `${table}_delete`, "delete", { using: check }),
  ];
}

const CALLER_MANAGES_TENANT_OF_ROW = `exists (
    select 1
    from public.user_roles r
    where r.user_id = (select auth.uid())
      and r.tenant_id = projects.tenant_id
      and r.role = any (array['tenant_admin', 'project_manager'])
  )`;
const CALLER_ADMINS_TENANT_OF_ROW = `exists (
    select 1
    from public.user_roles r
    where r.user_id = (select auth.uid())
      and r.tenant_id = projects.tenant_id
      and r.role = 'tenant_admin'
  )`;

const directory = (name: string, purpose: string): TableModelDef => ({
  name,
  purpose,
  columns: [
    c("id", "uuid", { default: uuid }),
    c("tenant_id", "text", { notNull: true }),
    c("okta_user_id", "text"),
    c("full_name", "text", { notNull: true }),
    c("email", "text", { notNull: true }),
    c("region", "text"),
    c("active", "boolean", { notNull: true, default: "true" }),
    c("updated_at", "timestamp with time zone", { notNull: true, default: now }),
  ],
  primaryKey: ["id"],
  unique: [["tenant_id", "email"]],
  checks: { tenant_id: TENANT_ID_CHECK },
  access: "read",
  indexes: [],
  policies: [policy(APP_SCHEMA, name, `${name}_select`, "select", { using: CALLER_TENANT })],
});

const TABLES: readonly TableModelDef[] = [
  {
    name: "partner_org",
    purpose: "Partner organisations (vendors, delivery and channel partners) that projects are delivered with.",
    columns: [
      c("id", "text"),
      c("label", "text", { notNull: true }),
      c("kind", "text", { notNull: true }),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["id"],
    unique: [["label"]],
    checks: {
      id: "id ~ '^[a-z0-9][a-z0-9-]{0,62}$'",
      kind: "kind = any (array['vendor', 'delivery_partner', 'channel_partner'])",
    },
    access: "read",
    indexes: [],
    policies: [policy(APP_SCHEMA, "partner_org", "partner_org_select", "select", { using: "true" })],
  },
  {
    name: "partner_normalization",
    purpose: "Maps partner names as they arrive in imports (aliases) to the canonical partner_org.",
    columns: [
      c("alias", "text"),
      c("partner_org_id", "text", { notNull: true }),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["alias"],
    foreignKeys: [{ columns: ["partner_org_id"], references: "public.partner_org", onDelete: "restrict" }],
    checks: { alias: "alias = lower(btrim(alias)) and alias <> ''" },
    access: "read",
    indexes: [["partner_org_id"]],
    policies: [
      policy(APP_SCHEMA, "partner_normalization", "partner_normalization_select", "select", { using: "true" }),
    ],
  },
  {
    name: "projects",
    purpose: "A tenant's delivery project; Stage 2 filters on stage, stage_application, partner, derived status.",
    columns: [
      c("id", "uuid", { default: uuid }),
      c("tenant_id", "text", { notNull: true }),
      c("name", "text", { notNull: true }),
      c("stage", "text", { notNull: true, default: "'intake'::text" }),
      c("stage_application", "text"),
      c("partner_org_id", "text"),
      c("derived_status", "text"),
      c("created_by", "uuid"),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
      c("updated_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["id"],
    foreignKeys: [
      { columns: ["partner_org_id"], references: "public.partner_org", onDelete: "restrict" },
      { columns: ["created_by"], references: "auth.users", onDelete: "set null" },
    ],
    checks: { tenant_id: TENANT_ID_CHECK },
    access: "read-write",
    indexes: [["stage"], ["stage_application"], ["partner_org_id"], ["derived_status"], ["tenant_id"]],
    policies: [
      policy(APP_SCHEMA, "projects", "projects_select", "select", { using: mayActOn("id") }),
      // The one project policy that cannot ask the helper: the project does not exist yet, so creating one
      // is a tenant role (tenant_admin or project_manager of the new row's tenant), not a membership.
      policy(APP_SCHEMA, "projects", "projects_insert", "insert", { withCheck: CALLER_MANAGES_TENANT_OF_ROW }),
      policy(APP_SCHEMA, "projects", "projects_update", "update", { using: mayActOn("id"), withCheck: mayActOn("id") }),
      policy(APP_SCHEMA, "projects", "projects_delete", "delete", {
        using: `${mayActOn("id")} and ${CALLER_ADMINS_TENANT_OF_ROW}`,
      }),
    ],
  },
  {
    name: "project_membership",
    purpose: "Which auth users belong to which project, and in what project role.",
    columns: [
      c("project_id", "uuid"),
      c("user_id", "uuid"),
      c("role", "text", { notNull: true, default: "'member'::text" }),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["project_id", "user_id"],
    foreignKeys: [
      { columns: ["project_id"], references: "public.projects", onDelete: "cascade" },
      { columns: ["user_id"], references: "auth.users", onDelete: "cascade" },
    ],
    checks: { role: "role = any (array['owner', 'member', 'viewer'])" },
    access: "read",
    indexes: [["user_id"]],
    policies: [
      policy(APP_SCHEMA, "project_membership", "project_membership_select", "select", {
        using: mayActOn("project_id"),
      }),
    ],
  },
  {
    name: "contacts",
    purpose: "People on the customer or partner side of a project.",
    columns: [
      c("id", "uuid", { default: uuid }),
      c("project_id", "uuid", { notNull: true }),
      c("full_name", "text", { notNull: true }),
      c("email", "text"),
      c("phone", "text"),
      c("partner_org_id", "text"),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["id"],
    foreignKeys: [
      { columns: ["project_id"], references: "public.projects", onDelete: "cascade" },
      { columns: ["partner_org_id"], references: "public.partner_org", onDelete: "restrict" },
    ],
    access: "read-write",
    indexes: [["project_id"], ["partner_org_id"]],
    policies: projectScopedPolicies("contacts"),
  },
  {
    name: "engagements",
    purpose: "Meetings, calls and workshops held on a project, optionally with a contact.",
    columns: [
      c("id", "uuid", { default: uuid }),
      c("project_id", "uuid", { notNull: true }),
      c("contact_id", "uuid"),
      c("kind", "text", { notNull: true }),
      c("occurred_at", "timestamp with time zone", { notNull: true }),
      c("summary", "text"),
      c("created_by", "uuid"),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["id"],
    foreignKeys: [
      { columns: ["project_id"], references: "public.projects", onDelete: "cascade" },
      { columns: ["contact_id"], references: "public.contacts", onDelete: "set null" },
      { columns: ["created_by"], references: "auth.users", onDelete: "set null" },
    ],
    access: "read-write",
    indexes: [["project_id"], ["contact_id"]],
    policies: projectScopedPolicies("engagements"),
  },
  {
    name: "attachments_meta",
    purpose:
      "One row per file in the attachments bucket; ties the storage object `<project_id>/<file>` to its project.",
    columns: [
      c("id", "uuid", { default: uuid }),
      c("project_id", "uuid", { notNull: true }),
      c("bucket_id", "text", { notNull: true, default: "'attachments'::text" }),
      c("object_name", "text", { notNull: true }),
      c("content_type", "text"),
      c("size_bytes", "bigint"),
      c("uploaded_by", "uuid"),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["id"],
    unique: [["bucket_id", "object_name"]],
    foreignKeys: [
      { columns: ["project_id"], references: "public.projects", onDelete: "cascade" },
      { columns: ["uploaded_by"], references: "auth.users", onDelete: "set null" },
    ],
    // The storage policies trust this row, so the path convention is enforced here, once.
    checks: { object_name: "starts_with(object_name, project_id::text || '/')" },
    access: "read-write",
    indexes: [["project_id"]],
    policies: projectScopedPolicies("attachments_meta"),
  },
  directory("ds_directory", "Delivery specialists of a tenant, synced from Okta, for assignment pickers."),
  directory("rm_directory", "Relationship managers of a tenant, synced from Okta, for assignment pickers."),
  {
    name: "user_profiles",
    purpose: "The Okta identity of an auth user and the tenant they belong to.",
    columns: [
      c("user_id", "uuid"),
      c("tenant_id", "text", { notNull: true }),
      c("okta_sub", "text", { notNull: true }),
      c("email", "text"),
      c("display_name", "text"),
      c("created_at", "timestamp with time zone", { notNull: true, default: now }),
      c("updated_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["user_id"],
    unique: [["okta_sub"]],
    foreignKeys: [{ columns: ["user_id"], references: "auth.users", onDelete: "cascade" }],
    checks: { tenant_id: TENANT_ID_CHECK },
    access: "read",
    indexes: [["tenant_id"]],
    policies: [policy(APP_SCHEMA, "user_profiles", "user_profiles_select", "select", { using: CALLER_IS_SELF })],
  },
  {
    name: "user_roles",
    purpose: "Tenant roles of a user (tenant_admin, project_manager, viewer), mapped from Okta groups.",
    columns: [
      c("user_id", "uuid"),
      c("tenant_id", "text"),
      c("role", "text"),
      c("granted_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["user_id", "tenant_id", "role"],
    foreignKeys: [{ columns: ["user_id"], references: "auth.users", onDelete: "cascade" }],
    checks: {
      role: "role = any (array['tenant_admin', 'project_manager', 'viewer'])",
      tenant_id: TENANT_ID_CHECK,
    },
    access: "read",
    indexes: [],
    policies: [policy(APP_SCHEMA, "user_roles", "user_roles_select", "select", { using: CALLER_IS_SELF })],
  },
  {
    name: "features",
    purpose: "Per-tenant feature flags keyed by (tenant_id, name); Stage 2 inserts them disabled and never flips them.",
    columns: [
      c("tenant_id", "text"),
      c("name", "text"),
      c("enabled", "boolean", { notNull: true, default: "false" }),
      c("updated_at", "timestamp with time zone", { notNull: true, default: now }),
    ],
    primaryKey: ["tenant_id", "name"],
    checks: { tenant_id: TENANT_ID_CHECK },
    access: "read",
    indexes: [],
    policies: [policy(APP_SCHEMA, "features", "features_select", "select", { using: CALLER_TENANT })],
  },
  {
    name: "staging_imports",
    purpose: "Raw rows of CRM/partner imports before normalization; back office only, never exposed to API users.",
    columns: [
      c("id", "bigint", { identity: "always" }),
      c("tenant_id", "text", { notNull: true }),
      c("source", "text", { notNull: true }),
      c("payload", "jsonb", { notNull: true }),
      c("imported_at", "timestamp with time zone", { notNull: true, default: now }),
      c("processed_at", "timestamp with time zone"),
    ],
    primaryKey: ["id"],
    access: "none",
    indexes: [],
    policies: [],
  },
];

function tableGrants(name: string, access: Access): GrantsSpec {
  return grants(
    { kind: "table", schema: APP_SCHEMA, name },
    {
      public: [],
      anon: [],
      authenticated: access === "read-write" ? READ_WRITE : access === "read" ? READ : [],
      service_role: ALL_TABLE_PRIVILEGES,
    },
  );
}

/** The 13 tables in dependency order (a table comes after the tables it references). */
export const STAGE2_TABLES: readonly ModelTable[] = TABLES.map((def) => ({
  purpose: def.purpose,
  spec: tableSpec(APP_SCHEMA, def),
  indexes: def.indexes.map((cols) => index(APP_SCHEMA, def.name, cols)),
  policies: def.policies,
  grants: tableGrants(def.name, def.access),
}));

export const STAGE2_TABLE_NAMES: readonly string[] = STAGE2_TABLES.map((t) => t.spec.name);

export const PRIVATE_SCHEMA_SPEC: SchemaSpec = { name: PRIVATE_SCHEMA };

export const PRIVATE_SCHEMA_GRANTS: GrantsSpec = grants(
  { kind: "schema", name: PRIVATE_SCHEMA },
  {
    public: [],
    anon: [],
    authenticated: ["USAGE"],
    service_role: ["USAGE"],
  },
);

export const HELPER_GRANTS: GrantsSpec = grants(
  { kind: "function", schema: HELPER.schema, name: HELPER.name, arguments: "uuid" },
  { public: [], anon: [], authenticated: ["EXECUTE"], service_role: ["EXECUTE"] },
);

/** The runbook's Stage 2 filter columns on projects, as the verification report checks them. */
export const VERIFIED_PROJECT_INDEX_COLUMNS = [
  "stage_application",
  "partner_org_id",
  "derived_status",
  "tenant_id",
] as const;
