/**
 * Specs -> SQL text. Pure functions: the same renderers feed the resources (database/kinds/*) and the
 * break-glass scripts (cli/export-sql.ts), so the manual path and the Pulumi path never disagree.
 * Identifiers are always quoted; literals are spelled with `literal()` only where SQL cannot take a
 * bind parameter (DDL); row values go through parameters (see database/kinds/data.ts).
 */
import type {
  BucketSpec,
  ColumnSpec,
  FeatureRowsSpec,
  ForeignKeySpec,
  FunctionSpec,
  GrantsSpec,
  IndexSpec,
  PolicySetSpec,
  PolicySpec,
  Privilege,
  RowSpec,
  RoleSpec,
  RowValue,
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

/** `usingIndex`: the index createKeyIndex built CONCURRENTLY becomes the key (no build under the lock). */
export function addPrimaryKey(table: TableSpec, usingIndex = false): string {
  const name = table.primaryKey.name;
  return usingIndex
    ? `alter table ${tableName(table)} add constraint ${ident(name)} primary key using index ${ident(keyIndexName(name))}`
    : `alter table ${tableName(table)} add constraint ${ident(name)} primary key (${columnList(table.primaryKey.columns)})`;
}

/**
 * The name of the unique index built for a key constraint before the constraint exists: not the constraint's
 * own, which a constraint being replaced still holds (ADD CONSTRAINT ... USING INDEX renames it).
 */
function keyIndexName(constraint: string): string {
  return `${constraint.slice(0, 54)}_stage2new`;
}

/** The unique index a key constraint will use, built without blocking writes (a populated table). */
export function createKeyIndex(table: TableSpec, constraint: string, columns: readonly string[]): string {
  return (
    `create unique index concurrently if not exists ${ident(keyIndexName(constraint))} ` +
    `on ${tableName(table)} (${columnList(columns)})`
  );
}

/** The CHECK that lets SET NOT NULL skip its scan, and its lifecycle (tables.ts planTableChanges). */
export function notNullProof(table: TableSpec, column: string): { add: string; validate: string; drop: string } {
  const name = `${table.name}_${column}_stage2_not_null`.slice(0, 63);
  return {
    add: `alter table ${tableName(table)} add constraint ${ident(name)} check (${ident(column)} is not null) not valid`,
    validate: validateConstraint(table, name),
    drop: dropConstraint(table, name),
  };
}

export function renameConstraint(table: TableSpec, from: string, to: string): string {
  return `alter table ${tableName(table)} rename constraint ${ident(from)} to ${ident(to)}`;
}

/** `usingIndex`: the index createKeyIndex built CONCURRENTLY becomes the constraint. */
export function addUnique(table: TableSpec, name: string, usingIndex = false): string {
  return usingIndex
    ? `alter table ${tableName(table)} add constraint ${ident(name)} unique using index ${ident(keyIndexName(name))}`
    : `alter table ${tableName(table)} add constraint ${ident(name)} unique (${columnList(table.uniques[name].columns)})`;
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

/**
 * Drops the table only if it is still empty when it is locked: the caller's count ran in an earlier round
 * trip, and a row that arrived since must stop the drop, not vanish with it.
 */
export function dropEmptyTable(spec: TableSpec): string[] {
  const table = tableName(spec);
  return [
    `lock table ${table} in access exclusive mode`,
    doBlock(
      `if exists (select 1 from ${table}) then\n` +
        `  raise exception 'table % gained rows during this run; Stage 2 never drops a table with data', ` +
        `${literal(`${spec.schema}.${spec.name}`)};\n` +
        "end if;",
    ),
    `drop table ${table}`,
  ];
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

/** The attributes of RoleSpec, as CREATE/ALTER ROLE spells them set and unset. */
const ROLE_ATTRIBUTES: readonly [keyof RoleSpec, string][] = [
  ["login", "login"],
  ["superuser", "superuser"],
  ["createDb", "createdb"],
  ["createRole", "createrole"],
  ["replication", "replication"],
  ["bypassRls", "bypassrls"],
];

/**
 * `verifier`: a SCRAM verifier (database/scram.ts), never the password. Only LOGIN is spelled out: the other
 * attributes are off by default, and naming SUPERUSER, REPLICATION or BYPASSRLS at all takes a superuser.
 */
export function createRole(spec: RoleSpec, verifier: string): string {
  return `create role ${ident(spec.name)} ${spec.login ? "login" : "nologin"} password ${literal(verifier)}`;
}

/** Only what differs from `live`: naming an attribute the role already has would need more than CREATEROLE. */
export function alterRole(live: RoleSpec, spec: RoleSpec, verifier?: string): string[] {
  const changed = ROLE_ATTRIBUTES.filter(([key]) => live[key] !== spec[key]).map(
    ([key, word]) => `${spec[key] ? "" : "no"}${word}`,
  );
  return [
    ...(changed.length || verifier
      ? [
          `alter role ${ident(spec.name)}${changed.map((w) => ` ${w}`).join("")}${verifier ? ` password ${literal(verifier)}` : ""}`,
        ]
      : []),
    ...live.memberOf
      .filter((group) => !spec.memberOf.includes(group))
      .map((group) => `revoke ${ident(group)} from ${ident(spec.name)}`),
    ...spec.memberOf
      .filter((group) => !live.memberOf.includes(group))
      .map((group) => `grant ${ident(group)} to ${ident(spec.name)}`),
  ];
}

/**
 * Takes away what a role holds beyond the model (introspect.ts roleFootprintQuery `remedy` per thing), then checks
 * in the same transaction that nothing is left, so that a power the owner role cannot take away (a privilege
 * another role granted) rolls the whole reduction back and is named in the error.
 *
 * A large object can be unlinked only by its owner: the owner role takes the reviewer's rights for the statement
 * (it created the role, so it may grant it to itself: PostgreSQL 15 lets CREATEROLE grant any role; 16 and later
 * let the role's admin, which its creator is) and gives them back at once.
 */
export function reduceRole(name: string, remedies: readonly string[], footprint: string): string[] {
  const role = literal(name);
  const statements = remedies.filter((r) => r !== "lo_unlink");
  if (remedies.includes("lo_unlink")) {
    const body = `
declare
  borrowed boolean := not pg_catalog.pg_has_role(current_user, ${role}, 'USAGE');
begin
  if borrowed then
    execute format('grant %I to current_user%s', ${role},
      case when current_setting('server_version_num')::int >= 160000 then ' with inherit true, set false' else '' end);
  end if;
  perform pg_catalog.lo_unlink(l.oid) from pg_catalog.pg_largeobject_metadata l where l.lomowner = ${role}::regrole;
  if borrowed then
    execute format('revoke %I from current_user', ${role});
  end if;
end`;
    const tag = freeDollarTag("unlink", body);
    statements.push(`do ${tag}${body}${tag}`);
  }
  const check = `
declare
  held text;
begin
  select string_agg(f.what, '; ' order by f.what) into held from (${footprint}) f;
  if held is not null then
    raise exception using errcode = '42501', message = format('%s still holds: %s', ${role}, held);
  end if;
end`;
  const tag = freeDollarTag("check", check);
  return [...statements, `do ${tag}${check}${tag}`];
}

/** Drops an existing role that holds privileges in `schemas` (its policies left the model first). */
export function dropRole(spec: RoleSpec, schemas: readonly string[]): string[] {
  const role = ident(spec.name);
  return [
    ...schemas.flatMap((schema) => [
      `revoke all on all tables in schema ${ident(schema)} from ${role}`,
      `revoke all on all functions in schema ${ident(schema)} from ${role}`,
      `revoke all on schema ${ident(schema)} from ${role}`,
    ]),
    `drop role ${role}`,
  ];
}

export function createOrReplaceFunction(spec: FunctionSpec): string {
  const dollar = freeDollarTag("body", spec.body);
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

/**
 * GRANT takes no lock on its table, yet rewrites the table's catalog row, as do a foreign key that references
 * the table (its triggers) and an index build, which the engine may run at the same moment: the loser fails
 * with "tuple concurrently updated". A lock that conflicts with both makes the GRANT wait its turn instead.
 */
export function lockForGrants(target: GrantsSpec["target"]): string[] {
  return target.kind === "table"
    ? [`lock table ${qualified(target.schema, target.name)} in share row exclusive mode`]
    : [];
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

/**
 * Bucket upsert, for the break-glass script (the resource sends the same statement with parameters). The row
 * is rewritten only when it differs, so a re-run of the script changes nothing.
 */
/** The bucket's upsert with its values as `values` renders them: bind parameters, or literals for a script. */
function upsertBucket(values: readonly string[]): string {
  return `insert into storage.buckets as b (id, name, public, file_size_limit, allowed_mime_types)
values (${values.join(", ")})
on conflict (id) do update set name = excluded.name, public = excluded.public,
  file_size_limit = excluded.file_size_limit, allowed_mime_types = excluded.allowed_mime_types
where (b.name, b.public, b.file_size_limit, b.allowed_mime_types)
  is distinct from (excluded.name, excluded.public, excluded.file_size_limit, excluded.allowed_mime_types)`;
}

export function upsertBucketScript(spec: BucketSpec): string {
  const mime = spec.allowedMimeTypes ? `array[${spec.allowedMimeTypes.map(literal).join(", ")}]::text[]` : "null";
  return upsertBucket([
    literal(spec.bucketId),
    literal(spec.name),
    String(spec.public),
    String(spec.fileSizeLimit ?? "null"),
    mime,
  ]);
}

export const UPSERT_BUCKET = upsertBucket(["$1", "$2", "$3", "$4", "$5::text[]"]);

// ---------------------------------------------------------------------------------------------------------
// Break-glass scripts (cli/export-sql.ts): the same objects as idempotent SQL for Studio's SQL editor.
// Where PostgreSQL has no IF NOT EXISTS form, a DO block asks the catalog first.
// ---------------------------------------------------------------------------------------------------------

/** A row value as an SQL literal (the resources send the same values as bind parameters). */
export function valueLiteral(value: RowValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot spell ${value} as an SQL literal`);
    return String(value);
  }
  return literal(value);
}

function textArray(values: readonly string[]): string {
  return `array[${values.map(literal).join(", ")}]::text[]`;
}

function indented(text: string): string {
  return text
    .split("\n")
    .map((line) => (line ? `  ${line}` : line))
    .join("\n");
}

/** A dollar-quote tag named `name` that does not occur in `text`. */
function freeDollarTag(name: string, text: string): string {
  let tag = `$${name}$`;
  for (let i = 0; text.includes(tag); i++) tag = `$${name}${i}$`;
  return tag;
}

/** An anonymous PL/pgSQL block: for the steps that have no IF NOT EXISTS form. */
export function doBlock(body: string, declarations?: string): string {
  const tag = freeDollarTag("do", body + (declarations ?? ""));
  return [
    `do ${tag}`,
    ...(declarations ? ["declare", indented(declarations)] : []),
    "begin",
    indented(body),
    "end",
    tag,
  ].join("\n");
}

/**
 * The table's constraints, each added only when the table lacks it: one DO block, or null when the table
 * has no constraints. For a table that existed before the script ran (CREATE TABLE IF NOT EXISTS skipped it).
 * Constraints are matched by name, except the primary key (a table has at most one, whatever its name).
 * Foreign keys and checks are added NOT VALID and then validated, the same statements the resources run.
 */
export function addMissingConstraints(spec: TableSpec): string | null {
  const table = literal(tableName(spec));
  const ensure = (condition: string, statements: readonly string[]): string =>
    `if not exists (select 1 from pg_catalog.pg_constraint\n` +
    `               where conrelid = ${table}::pg_catalog.regclass and ${condition}) then\n` +
    indented(statements.map((s) => `${s};`).join("\n")) +
    `\nend if;`;
  const named = (name: string): string => `conname = ${literal(name)}`;
  const steps = [
    ...(spec.primaryKey.columns.length ? [ensure("contype = 'p'", [addPrimaryKey(spec)])] : []),
    ...Object.keys(spec.uniques).map((name) => ensure(named(name), [addUnique(spec, name)])),
    ...Object.keys(spec.foreignKeys).map((name) =>
      ensure(named(name), [...addForeignKey(spec, name), validateConstraint(spec, name)]),
    ),
    ...Object.keys(spec.checks).map((name) =>
      ensure(named(name), [...addCheck(spec, name), validateConstraint(spec, name)]),
    ),
  ];
  return steps.length ? doBlock(steps.join("\n")) : null;
}

/**
 * Drops the policies on the set's table (those matching its prefix, if it has one) that the model does not
 * list: what the PolicySet resource does on `up`, since an extra permissive policy widens access.
 */
export function dropPoliciesOutsideSet(set: PolicySetSpec): string {
  const table = qualified(set.schema, set.table);
  const filters = [
    `polrelid = ${literal(table)}::pg_catalog.regclass`,
    `polname::text <> all (${textArray(set.names)})`,
    ...(set.prefix === null ? [] : [`starts_with(polname::text, ${literal(set.prefix)})`]),
  ];
  return doBlock(
    `for p in select polname from pg_catalog.pg_policy\n` +
      `         where ${filters.join("\n           and ")} loop\n` +
      `  execute pg_catalog.format('drop policy if exists %I on %s', p.polname, ${literal(table)});\n` +
      `end loop;`,
    "p record;",
  );
}

/**
 * Seed rows of one table, upserted by key in one statement. A row is rewritten only when its values differ,
 * so a re-run changes nothing; rows that are not in the seed file are never touched.
 */
export function upsertRowsScript(rows: readonly RowSpec[]): string {
  if (rows.length === 0) throw new Error("upsertRowsScript: no rows");
  const [first] = rows;
  const keys = Object.keys(first.key);
  const values = Object.keys(first.values);
  const columns = [...keys, ...values];
  for (const row of rows) {
    if (
      row.schema !== first.schema ||
      row.table !== first.table ||
      JSON.stringify([...Object.keys(row.key), ...Object.keys(row.values)]) !== JSON.stringify(columns)
    ) {
      throw new Error(`upsertRowsScript: every row must be of ${first.schema}.${first.table} with columns ${columns}`);
    }
  }
  const tuples = rows.map(
    (row) => `(${columns.map((c) => valueLiteral(c in row.key ? row.key[c] : row.values[c])).join(", ")})`,
  );
  const onConflict = values.length
    ? `do update set ${values.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(", ")}\n` +
      `  where (${values.map((c) => `t.${ident(c)}`).join(", ")}) is distinct from (${values.map((c) => `excluded.${ident(c)}`).join(", ")})`
    : "do nothing";
  return (
    `insert into ${qualified(first.schema, first.table)} as t (${columns.map(ident).join(", ")})\nvalues\n  ` +
    `${tuples.join(",\n  ")}\non conflict (${keys.map(ident).join(", ")}) ${onConflict}`
  );
}

/**
 * The feature rows every tenant must have, inserted disabled when missing. An existing row is left alone,
 * whatever its `enabled` value: flags belong to operators once they exist.
 */
export function insertMissingFeatureRowsScript(spec: FeatureRowsSpec): string {
  const tuples = spec.tenants.flatMap((tenant) =>
    spec.flags.map((flag) => `(${literal(tenant)}, ${literal(flag)}, false)`),
  );
  if (tuples.length === 0) throw new Error(`insertMissingFeatureRowsScript: no feature rows for ${spec.table}`);
  return (
    `insert into ${qualified(spec.schema, spec.table)} ("tenant_id", "name", "enabled")\nvalues\n  ` +
    `${tuples.join(",\n  ")}\non conflict ("tenant_id", "name") do nothing`
  );
}
