/**
 * Specs -> SQL text. Pure functions: the same renderers feed the resources (database/apply.ts) and the
 * break-glass scripts (scripts/export-sql.ts), so the manual path and the Pulumi path never disagree.
 * Identifiers are always quoted; literals are spelled with `literal()` only where SQL cannot take a
 * bind parameter (DDL); row values go through parameters (see database/apply.ts).
 */
import type {
  BucketSpec,
  ColumnSpec,
  ForeignKeySpec,
  FunctionSpec,
  GrantsSpec,
  IndexSpec,
  PolicySpec,
  Privilege,
  SchemaSpec,
  TableSpec,
} from "./specs";
import { ident, literal, qualified, splitQualified } from "./sql";

export function tableName(spec: { schema: string; name: string }): string {
  return qualified(spec.schema, spec.name);
}

export function columnDefinition(name: string, col: ColumnSpec): string {
  const parts = [ident(name), col.type];
  if (col.identity) parts.push(`generated ${col.identity} as identity`);
  if (col.default !== null) parts.push(`default ${col.default}`);
  if (!col.nullable) parts.push("not null");
  return parts.join(" ");
}

function columnList(columns: readonly string[]): string {
  return columns.map(ident).join(", ");
}

export function foreignKeyDefinition(fk: ForeignKeySpec): string {
  const target = splitQualified(fk.references);
  return (
    `foreign key (${columnList(fk.columns)}) references ${qualified(target.schema, target.name)} ` +
    `(${columnList(fk.referencedColumns)}) on delete ${fk.onDelete}`
  );
}

/** CREATE TABLE with every constraint inline, and RLS on in the same transaction (never a window without it). */
export function createTable(spec: TableSpec): string[] {
  const lines = spec.columnOrder.map((name) => columnDefinition(name, spec.columns[name]));
  lines.push(`constraint ${ident(spec.primaryKey.name)} primary key (${columnList(spec.primaryKey.columns)})`);
  for (const [name, u] of Object.entries(spec.uniques))
    lines.push(`constraint ${ident(name)} unique (${columnList(u.columns)})`);
  for (const [name, fk] of Object.entries(spec.foreignKeys))
    lines.push(`constraint ${ident(name)} ${foreignKeyDefinition(fk)}`);
  for (const [name, check] of Object.entries(spec.checks))
    lines.push(`constraint ${ident(name)} check (${check.expression})`);
  return [
    `create table if not exists ${tableName(spec)} (\n  ${lines.join(",\n  ")}\n)`,
    rowLevelSecurity(spec, spec.rowLevelSecurity),
  ];
}

export function rowLevelSecurity(table: { schema: string; name: string }, enabled: boolean): string {
  return `alter table ${tableName(table)} ${enabled ? "enable" : "disable"} row level security`;
}

export function addColumn(table: TableSpec, name: string): string {
  return `alter table ${tableName(table)} add column if not exists ${columnDefinition(name, table.columns[name])}`;
}

export function setNullable(table: TableSpec, column: string, nullable: boolean): string {
  return `alter table ${tableName(table)} alter column ${ident(column)} ${nullable ? "drop" : "set"} not null`;
}

export function setDefault(table: TableSpec, column: string, expression: string | null): string {
  return (
    `alter table ${tableName(table)} alter column ${ident(column)} ` +
    (expression === null ? "drop default" : `set default ${expression}`)
  );
}

export function dropConstraint(table: TableSpec, name: string): string {
  return `alter table ${tableName(table)} drop constraint if exists ${ident(name)}`;
}

export function addPrimaryKey(table: TableSpec): string {
  return `alter table ${tableName(table)} add constraint ${ident(table.primaryKey.name)} primary key (${columnList(table.primaryKey.columns)})`;
}

export function renameConstraint(table: TableSpec, from: string, to: string): string {
  return `alter table ${tableName(table)} rename constraint ${ident(from)} to ${ident(to)}`;
}

export function addUnique(table: TableSpec, name: string): string {
  return `alter table ${tableName(table)} add constraint ${ident(name)} unique (${columnList(table.uniques[name].columns)})`;
}

/**
 * Constraints that must check existing rows are added NOT VALID (a brief lock) and validated in a separate
 * statement, which scans under a lock that does not block writes.
 */
export function addForeignKey(table: TableSpec, name: string): string[] {
  return [
    `alter table ${tableName(table)} add constraint ${ident(name)} ${foreignKeyDefinition(table.foreignKeys[name])} not valid`,
  ];
}

export function addCheck(table: TableSpec, name: string): string[] {
  return [
    `alter table ${tableName(table)} add constraint ${ident(name)} check (${table.checks[name].expression}) not valid`,
  ];
}

export function validateConstraint(table: TableSpec, name: string): string {
  return `alter table ${tableName(table)} validate constraint ${ident(name)}`;
}

export function dropTable(spec: TableSpec): string {
  return `drop table if exists ${tableName(spec)}`;
}

export function createIndex(spec: IndexSpec, concurrently: boolean): string {
  return (
    `create ${spec.unique ? "unique " : ""}index ${concurrently ? "concurrently " : ""}if not exists ${ident(spec.name)} ` +
    `on ${qualified(spec.schema, spec.table)} using btree (${columnList(spec.columns)})` +
    (spec.where ? ` where ${spec.where}` : "")
  );
}

export function dropIndex(spec: { schema: string; name: string }, concurrently: boolean): string {
  return `drop index ${concurrently ? "concurrently " : ""}if exists ${qualified(spec.schema, spec.name)}`;
}

export function renameIndex(schema: string, from: string, to: string): string {
  return `alter index ${qualified(schema, from)} rename to ${ident(to)}`;
}

export function createSchema(spec: SchemaSpec): string {
  return `create schema if not exists ${ident(spec.name)}`;
}

export function dropSchema(spec: SchemaSpec): string {
  return `drop schema if exists ${ident(spec.name)}`;
}

export function createOrReplaceFunction(spec: FunctionSpec): string {
  const dollar = dollarQuote(spec.body);
  return [
    `create or replace function ${qualified(spec.schema, spec.name)}(${spec.arguments})`,
    `returns ${spec.returns}`,
    `language ${spec.language}`,
    spec.volatility,
    spec.securityDefiner ? "security definer" : "security invoker",
    spec.searchPath === null ? "" : `set search_path = ${spec.searchPath === "" ? "''" : spec.searchPath}`,
    `as ${dollar}${spec.body}${dollar}`,
  ]
    .filter(Boolean)
    .join("\n");
}

export function dropFunction(spec: FunctionSpec): string {
  return `drop function if exists ${qualified(spec.schema, spec.name)}(${spec.arguments})`;
}

/** A dollar-quote tag that does not occur in the body. */
function dollarQuote(body: string): string {
  let tag = "$body$";
  for (let i = 0; body.includes(tag); i++) tag = `$body${i}$`;
  return tag;
}

export function createPolicy(spec: PolicySpec, onTable = qualified(spec.schema, spec.table)): string {
  const roles = spec.roles.map((r) => (r === "public" ? "public" : ident(r))).join(", ");
  return [
    `create policy ${ident(spec.name)} on ${onTable}`,
    `as ${spec.permissive ? "permissive" : "restrictive"}`,
    `for ${spec.command}`,
    `to ${roles}`,
    spec.using !== null ? `using (${spec.using})` : "",
    spec.withCheck !== null ? `with check (${spec.withCheck})` : "",
  ]
    .filter(Boolean)
    .join("\n");
}

export function dropPolicy(spec: { schema: string; table: string; name: string }): string {
  return `drop policy if exists ${ident(spec.name)} on ${qualified(spec.schema, spec.table)}`;
}

/** Drop and create in one transaction: the table is never without the policy in between. */
export function replacePolicy(spec: PolicySpec): string[] {
  return [dropPolicy(spec), createPolicy(spec)];
}

function grantTarget(target: GrantsSpec["target"]): string {
  switch (target.kind) {
    case "table":
      return `table ${qualified(target.schema, target.name)}`;
    case "function":
      return `function ${qualified(target.schema, target.name)}(${target.arguments})`;
    case "schema":
      return `schema ${ident(target.name)}`;
  }
}

function grantee(role: string): string {
  return role === "public" ? "public" : ident(role);
}

/** REVOKE ALL then GRANT exactly the listed privileges, for one grantee. */
export function setPrivileges(target: GrantsSpec["target"], role: string, privileges: readonly Privilege[]): string[] {
  const on = grantTarget(target);
  const statements = [`revoke all on ${on} from ${grantee(role)}`];
  if (privileges.length)
    statements.push(`grant ${privileges.map((p) => p.toLowerCase()).join(", ")} on ${on} to ${grantee(role)}`);
  return statements;
}

/** Bucket upsert, for the break-glass script (the resource sends the same statement with parameters). */
export function upsertBucketScript(spec: BucketSpec): string {
  const mime = spec.allowedMimeTypes ? `array[${spec.allowedMimeTypes.map(literal).join(", ")}]::text[]` : "null";
  return (
    `insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)\n` +
    `values (${literal(spec.bucketId)}, ${literal(spec.name)}, ${spec.public}, ${spec.fileSizeLimit ?? "null"}, ${mime})\n` +
    `on conflict (id) do update set name = excluded.name, public = excluded.public,\n` +
    `  file_size_limit = excluded.file_size_limit, allowed_mime_types = excluded.allowed_mime_types`
  );
}

export const UPSERT_BUCKET = `insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ($1, $2, $3, $4, $5::text[])
on conflict (id) do update set name = excluded.name, public = excluded.public,
  file_size_limit = excluded.file_size_limit, allowed_mime_types = excluded.allowed_mime_types`;
