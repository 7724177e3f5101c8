/**
 * The read-only reviewer: the role that pull-request previews and the daily drift check connect as, so that
 * the program a branch runs can read production but never change it.
 *
 * It gets exactly what a preview reads: the catalogs (readable by every role), SELECT on the three tables whose
 * rows the program manages (seed and feature rows), and the bucket's settings through one SECURITY DEFINER
 * function, because on Supabase `postgres` holds USAGE on schema storage without the grant option and cannot
 * pass it on. RLS still applies to it (PostgreSQL 15 lets only a superuser create a BYPASSRLS role, and the
 * platform's `postgres` is none), so each of those tables has a SELECT policy for it alone, modelled like every
 * other policy. It holds no privilege on any other table: a hand-made grant to it shows as drift.
 */
import { CREDENTIAL_VARIABLES } from "../config/credentials";
import type { FunctionSpec, GrantsSpec, PolicySpec, RoleGrant, RoleSpec } from "../database/specs";
import { literal } from "../database/sql";
import { grants, policy } from "./define";
import { APP_SCHEMA, PRIVATE_SCHEMA } from "./stage2";
import { ATTACHMENTS_BUCKET } from "./storage";

/** The tables whose rows a preview reads: the seeds (partner_org, partner_normalization) and the feature rows. */
export const REVIEWER_READS: readonly string[] = ["features", "partner_normalization", "partner_org"];

/** Where the reviewer's password comes from (config/credentials.ts); the spec names it, never holds it. */
export const REVIEWER_PASSWORD_VARIABLE = CREDENTIAL_VARIABLES.reviewerPassword;

export interface ReviewerModel {
  readonly role: RoleSpec;
  /** USAGE on schema public, granted explicitly rather than relied upon through PUBLIC. */
  readonly schemaGrants: GrantsSpec;
  /** `private.stage2_buckets()`: storage.buckets for a role that cannot be given storage. */
  readonly bucketReader: FunctionSpec;
  readonly bucketReaderGrants: GrantsSpec;
}

/** `tables`: the app tables, on each of which the model manages the reviewer's privileges (none, or SELECT). */
export function reviewerModel(name: string, tables: readonly string[]): ReviewerModel {
  const bucketReader: FunctionSpec = {
    schema: PRIVATE_SCHEMA,
    name: "stage2_buckets",
    arguments: "",
    returns: "TABLE(id text, name text, public boolean, file_size_limit bigint, allowed_mime_types text[])",
    language: "sql",
    volatility: "stable",
    securityDefiner: true,
    searchPath: "",
    body: `
  select b.id, b.name, b.public, b.file_size_limit, b.allowed_mime_types from storage.buckets b
  where b.id = ${literal(ATTACHMENTS_BUCKET)}
`,
  };
  return {
    role: {
      name,
      login: true,
      superuser: false,
      createDb: false,
      createRole: false,
      replication: false,
      bypassRls: false,
      memberOf: [],
      password: REVIEWER_PASSWORD_VARIABLE,
      holds: [],
      grantedBy: [
        { kind: "schema", name: APP_SCHEMA },
        { kind: "schema", name: PRIVATE_SCHEMA },
        ...tables.map((table): RoleGrant => ({ kind: "table", schema: APP_SCHEMA, name: table })),
        { kind: "function", schema: PRIVATE_SCHEMA, name: bucketReader.name },
        ...REVIEWER_READS.map((table): RoleGrant => ({
          kind: "policy",
          schema: APP_SCHEMA,
          table,
          name: reviewerPolicyName(table),
        })),
      ],
    },
    schemaGrants: grants({ kind: "schema", name: APP_SCHEMA }, { [name]: ["USAGE"] }),
    bucketReader,
    bucketReaderGrants: grants(
      { kind: "function", schema: PRIVATE_SCHEMA, name: bucketReader.name, arguments: "" },
      { public: [], anon: [], authenticated: [], service_role: [], [name]: ["EXECUTE"] },
    ),
  };
}

/** The reviewer's privileges on one app table: SELECT where a preview reads rows, nothing elsewhere. */
export function reviewerTablePrivileges(table: string): GrantsSpec["privileges"][string] {
  return REVIEWER_READS.includes(table) ? ["SELECT"] : [];
}

/** Its SELECT policy on a table whose rows a preview reads; none elsewhere. */
export function reviewerPolicies(table: string, name: string): PolicySpec[] {
  return REVIEWER_READS.includes(table)
    ? [policy(APP_SCHEMA, table, reviewerPolicyName(table), "select", { using: "true" }, [name])]
    : [];
}

const reviewerPolicyName = (table: string) => `${table}_reviewer_select`;
