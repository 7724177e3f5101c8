/**
 * The documented access model (model/stage2.ts header, docs/architecture.md), written out again as plain
 * rules over a small world of users, tenants and projects, with no SQL and nothing taken from the policies.
 * The isolation test asks PostgreSQL (through the real policies) and compares with what these rules say.
 *
 *   - A user belongs to one tenant (user_profiles.tenant_id) and holds tenant roles (user_roles).
 *   - May act on a project: a member of it, or a tenant_admin of its tenant.
 *   - Creating a project: tenant_admin or project_manager of the new project's tenant.
 *     Deleting a project: tenant_admin of its tenant.
 *   - Project data (contacts, engagements, attachments and their files): whoever may act on the project.
 *     Memberships of a project: readable by whoever may act on it.
 *   - Tenant-scoped reference data (directories, features): readable within the caller's own tenant.
 *   - Partner reference data: readable by every signed-in user.
 *   - Profiles and roles: each user reads their own.
 *   - staging_imports: no API role. `anon`: nothing.
 *   - Writes to memberships, profiles, roles, directories, features and partner data: service_role only.
 *   - Storage: a file `<project_id>/<name>` in bucket attachments is read, uploaded or deleted by whoever
 *     may act on the project, once its attachments_meta row exists; files are never updated in place.
 */

export type TenantRole = "tenant_admin" | "project_manager" | "viewer";

export interface WorldUser {
  readonly key: string;
  readonly id: string;
  /** user_profiles.tenant_id, or null for an auth user without a profile. */
  readonly tenant: string | null;
  readonly roles: readonly { tenant: string; role: TenantRole }[];
  /** project key -> membership role. */
  readonly memberships: Readonly<Record<string, "owner" | "member" | "viewer">>;
}

export interface WorldProject {
  readonly key: string;
  readonly id: string;
  readonly tenant: string;
}

export type Caller = { readonly kind: "anon" } | { readonly kind: "user"; readonly user: WorldUser };

export type Operation = "select" | "insert" | "update" | "delete" | "insert-unrecorded";

/** What a cell is about: a project, a tenant, a user's own rows, or a global table. */
export type Scope =
  | { readonly kind: "project"; readonly project: WorldProject }
  | { readonly kind: "tenant"; readonly tenant: string }
  | { readonly kind: "user"; readonly user: WorldUser | null }
  | { readonly kind: "global" };

export function mayActOn(u: WorldUser, p: WorldProject): boolean {
  return p.key in u.memberships || hasRole(u, p.tenant, "tenant_admin");
}

function hasRole(u: WorldUser, tenant: string, role: TenantRole): boolean {
  return u.roles.some((r) => r.tenant === tenant && r.role === role);
}

/** Whether the documented model lets `caller` do `op` on `table` within `scope`. */
export function expected(caller: Caller, table: string, op: Operation, scope: Scope): boolean {
  if (caller.kind === "anon") return false;
  const u = caller.user;
  const project = scope.kind === "project" ? scope.project : undefined;
  switch (table) {
    case "projects":
      if (op === "insert")
        return hasRole(u, project!.tenant, "tenant_admin") || hasRole(u, project!.tenant, "project_manager");
      if (op === "delete") return hasRole(u, project!.tenant, "tenant_admin");
      return mayActOn(u, project!);
    case "contacts":
    case "engagements":
    case "attachments_meta":
      return mayActOn(u, project!);
    case "project_membership":
      return op === "select" && mayActOn(u, project!);
    case "storage.objects":
      if (op === "update" || op === "insert-unrecorded") return false;
      return mayActOn(u, project!);
    case "features":
    case "ds_directory":
    case "rm_directory":
      return op === "select" && scope.kind === "tenant" && u.tenant === scope.tenant;
    case "partner_org":
    case "partner_normalization":
      return op === "select";
    case "user_profiles":
    case "user_roles":
      return op === "select" && scope.kind === "user" && scope.user?.id === u.id;
    case "staging_imports":
      return false;
    default:
      throw new Error(`the access model says nothing about ${table}`);
  }
}
