/**
 * Live catalog -> canonical state, in the shapes of database/specs.ts.
 *
 * Each kind has one query that reads every object of that kind in a schema at once (a refresh pays one
 * round trip per kind, not one per object), optionally narrowed to one object for the read-back that ends
 * a write. All reads run with an empty search_path so that PostgreSQL prints every name qualified and
 * the printed form does not depend on the session: the form recorded after a write and the form read on
 * a later refresh are byte-for-byte comparable.
 */
import type {
  RoleGrant,
  BucketSpec,
  ColumnSpec,
  ForeignKeyAction,
  FunctionSpec,
  GrantsSpec,
  IndexSpec,
  PolicyCommand,
  PolicySpec,
  Privilege,
  RowSpec,
  TableSpec,
} from "./specs";
import { ident, literal, qualified, relationOid } from "./sql";

/** Statement that every read (and every write batch) starts with. */
export const PIN_SEARCH_PATH = "select set_config('search_path', '', true)";

function narrow(column: string, value: string | undefined): string {
  return value === undefined ? "" : ` and ${column} = ${literal(value)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------------------

export function tablesQuery(schema: string, name?: string): string {
  return tablesWhere(`c.relkind in ('r', 'p') and n.nspname = ${literal(schema)}${narrow("c.relname", name)}`);
}

/** The adoption probe's temporary copy of a table (see probeTableStatement). */
export function probeTableQuery(probeName: string): string {
  return tablesWhere(`c.oid = ${literal(`pg_temp.${probeName}`)}::regclass`);
}

function tablesWhere(where: string): string {
  return `
select c.relname as key, jsonb_build_object(
  'schema', n.nspname,
  'name', c.relname,
  'rowLevelSecurity', c.relrowsecurity,
  'columns', coalesce((
    select jsonb_object_agg(a.attname, jsonb_build_object(
      'type', format_type(a.atttypid, a.atttypmod),
      'nullable', not a.attnotnull,
      'default', pg_get_expr(d.adbin, d.adrelid),
      'identity', case a.attidentity when 'a' then 'always' when 'd' then 'by default' end))
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}'::jsonb),
  'columnOrder', coalesce((
    select jsonb_agg(a.attname order by a.attnum)
    from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]'::jsonb),
  'constraints', coalesce((
    select jsonb_agg(jsonb_build_object(
      'name', con.conname,
      'type', con.contype,
      'columns', (select jsonb_agg(att.attname order by k.ord)
                  from unnest(con.conkey) with ordinality k(attnum, ord)
                  join pg_attribute att on att.attrelid = con.conrelid and att.attnum = k.attnum),
      'references', case when con.contype = 'f' then con.confrelid::regclass::text end,
      'referencedColumns', (select jsonb_agg(att.attname order by k.ord)
                  from unnest(con.confkey) with ordinality k(attnum, ord)
                  join pg_attribute att on att.attrelid = con.confrelid and att.attnum = k.attnum),
      'onDelete', con.confdeltype,
      'definition', pg_get_constraintdef(con.oid)))
    from pg_constraint con where con.conrelid = c.oid), '[]'::jsonb)
) as spec
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where ${where}`;
}

interface RawConstraint {
  name: string;
  type: "p" | "u" | "f" | "c" | string;
  columns: string[] | null;
  references: string | null;
  referencedColumns: string[] | null;
  onDelete: string;
  definition: string;
}

interface RawTable {
  schema: string;
  name: string;
  rowLevelSecurity: boolean;
  columns: Record<string, ColumnSpec>;
  columnOrder: string[];
  constraints: RawConstraint[];
}

const FK_ACTIONS: Record<string, ForeignKeyAction> = {
  a: "no action",
  r: "restrict",
  c: "cascade",
  n: "set null",
  d: "set default",
};

/** The catalog's view of a table, in TableSpec shape. Check expressions are the printed CHECK (...) text. */
export function canonicalTable(raw: RawTable): TableSpec {
  const pk = raw.constraints.find((c) => c.type === "p");
  const uniques: Record<string, { columns: string[] }> = {};
  const foreignKeys: TableSpec["foreignKeys"] = {};
  const checks: Record<string, { expression: string }> = {};
  for (const con of raw.constraints) {
    if (con.type === "u") uniques[con.name] = { columns: con.columns ?? [] };
    if (con.type === "c") checks[con.name] = { expression: con.definition };
    if (con.type === "f") {
      (foreignKeys as Record<string, unknown>)[con.name] = {
        columns: con.columns ?? [],
        references: con.references ?? "",
        referencedColumns: con.referencedColumns ?? [],
        onDelete: FK_ACTIONS[con.onDelete] ?? "no action",
        validated: !con.definition.endsWith("NOT VALID"),
      };
    }
  }
  const columns: Record<string, ColumnSpec> = {};
  for (const [name, col] of Object.entries(raw.columns)) {
    columns[name] = {
      type: col.type,
      nullable: col.nullable,
      default: col.default ?? null,
      identity: col.identity ?? null,
    };
  }
  return {
    schema: raw.schema,
    name: raw.name,
    columns,
    columnOrder: raw.columnOrder,
    primaryKey: pk ? { name: pk.name, columns: pk.columns ?? [] } : { name: "", columns: [] },
    uniques,
    foreignKeys,
    checks,
    rowLevelSecurity: raw.rowLevelSecurity,
  };
}

/**
 * Canonical forms of a desired table's defaults and checks, printed by PostgreSQL itself from a temporary
 * copy (used when adopting a table that exists but was never applied by this program). Nothing persists:
 * the temporary table is dropped at the end of the transaction, and no lock is taken on the real table.
 */
export function probeTableStatement(spec: TableSpec, probeName: string): string {
  const columns = spec.columnOrder.map((name) => {
    const col = spec.columns[name];
    return `${ident(name)} ${col.type}${col.default ? ` default ${col.default}` : ""}`;
  });
  const checks = Object.entries(spec.checks).map(
    ([name, check]) => `constraint ${ident(name)} check (${check.expression})`,
  );
  return `create temporary table ${qualified("pg_temp", probeName)} (${[...columns, ...checks].join(", ")}) on commit drop`;
}

// ---------------------------------------------------------------------------------------------------------
// Indexes
// ---------------------------------------------------------------------------------------------------------

export function indexesQuery(schema: string, name?: string): string {
  return `
select i.relname as key, jsonb_build_object(
  'schema', n.nspname,
  'table', t.relname,
  'name', i.relname,
  'columns', coalesce((select jsonb_agg(a.attname order by k.ord)
             from unnest(ix.indkey::int2[]) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = ix.indrelid and a.attnum = k.attnum), '[]'::jsonb),
  'unique', ix.indisunique,
  'where', pg_get_expr(ix.indpred, ix.indrelid),
  'valid', ix.indisvalid and ix.indisready,
  'method', am.amname,
  'expressions', ix.indexprs is not null,
  'constraint', exists (select 1 from pg_constraint con where con.conindid = ix.indexrelid)
) as spec
from pg_index ix
join pg_class i on i.oid = ix.indexrelid
join pg_class t on t.oid = ix.indrelid
join pg_namespace n on n.oid = t.relnamespace
join pg_am am on am.oid = i.relam
where n.nspname = ${literal(schema)}${narrow("i.relname", name)}`;
}

export interface RawIndex extends IndexSpec {
  readonly method: string;
  readonly expressions: boolean;
  readonly constraint: boolean;
}

export function canonicalIndex(raw: RawIndex): IndexSpec {
  return {
    schema: raw.schema,
    table: raw.table,
    name: raw.name,
    columns: raw.columns,
    unique: raw.unique,
    where: raw.where ?? null,
    valid: raw.valid,
  };
}

/** A plain btree index that does the same job under another name (hand-made before adoption). */
export function isEquivalentIndex(raw: RawIndex, spec: IndexSpec): boolean {
  return (
    raw.table === spec.table &&
    raw.method === "btree" &&
    !raw.expressions &&
    !raw.constraint &&
    raw.valid &&
    raw.unique === spec.unique &&
    (raw.where ?? null) === spec.where &&
    JSON.stringify(raw.columns) === JSON.stringify(spec.columns)
  );
}

// ---------------------------------------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------------------------------------

export function functionsQuery(schema: string, name?: string): string {
  return `
select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as key, jsonb_build_object(
  'schema', n.nspname,
  'name', p.proname,
  'arguments', pg_get_function_arguments(p.oid),
  'returns', pg_get_function_result(p.oid),
  'language', l.lanname,
  'volatility', case p.provolatile when 'i' then 'immutable' when 's' then 'stable' else 'volatile' end,
  'securityDefiner', p.prosecdef,
  'config', to_jsonb(p.proconfig),
  'body', p.prosrc
) as spec
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_language l on l.oid = p.prolang
where p.prokind = 'f' and n.nspname = ${literal(schema)}${narrow("p.proname", name)}`;
}

export function canonicalFunction(raw: Omit<FunctionSpec, "searchPath"> & { config: string[] | null }): FunctionSpec {
  const entry = (raw.config ?? []).find((c) => c.startsWith("search_path="));
  // proconfig spells an empty search_path as "" (two double quotes).
  const value = entry === undefined ? null : entry.slice("search_path=".length);
  const { config: _config, ...rest } = raw;
  return { ...rest, searchPath: value === '""' ? "" : value };
}

/** Functions are keyed by name and identity arguments; the spec carries named arguments. */
export function functionKey(spec: FunctionSpec): string {
  return `${spec.name}(${spec.arguments})`;
}

// ---------------------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------------------

const POLICY_COLUMNS = `jsonb_build_object(
  'schema', n.nspname,
  'table', c.relname,
  'name', p.polname,
  'command', case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                           when 'd' then 'delete' else 'all' end,
  'permissive', p.polpermissive,
  'roles', coalesce((select jsonb_agg(r.name order by r.name)
            from (select case when o = 0 then 'public' else pg_get_userbyid(o) end as name
                  from unnest(p.polroles) o) r), '[]'::jsonb),
  'using', pg_get_expr(p.polqual, p.polrelid),
  'withCheck', pg_get_expr(p.polwithcheck, p.polrelid)
)`;

export function policiesQuery(schema: string, table?: string, name?: string): string {
  return `
select c.relname || '/' || p.polname as key, ${POLICY_COLUMNS} as spec
from pg_policy p
join pg_class c on c.oid = p.polrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = ${literal(schema)}${narrow("c.relname", table)}${narrow("p.polname", name)}`;
}

/**
 * A table's columns as `name type` definitions, from the catalog: a temporary copy made from them takes no lock
 * on the table (`create table ... (like t)` holds ACCESS SHARE on it to the end of the transaction).
 */
export function columnDefinitionsQuery(schema: string, table: string): string {
  return `
select coalesce(string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum), '')
  as columns
from pg_attribute a where a.attrelid = ${relationOid(schema, table)} and a.attnum > 0 and not a.attisdropped`;
}

/** columnDefinitionsQuery for several tables in one round trip, keyed by `schema.table`. */
export function columnDefinitionsOfQuery(
  tables: readonly { readonly schema: string; readonly table: string }[],
): string {
  return tables
    .map(
      (t) =>
        `select ${literal(`${t.schema}.${t.table}`)} as key, d.columns from (${columnDefinitionsQuery(t.schema, t.table)}) d`,
    )
    .join("\nunion all\n");
}

/** Every policy on this session's temporary tables (the copies of a batched probe, see policies.ts), by table/name. */
export function probePoliciesQuery(): string {
  return `
select c.relname || '/' || p.polname as key, ${POLICY_COLUMNS} as spec
from pg_policy p
join pg_class c on c.oid = p.polrelid
join pg_namespace n on n.oid = c.relnamespace
where c.relnamespace = pg_catalog.pg_my_temp_schema()`;
}

/** The same policy, created on a temporary copy of its table, printed by PostgreSQL (see policies.ts). */
export function probePolicyQuery(tableCopy: string, name: string): string {
  return `
select ${POLICY_COLUMNS} as spec
from pg_policy p
join pg_class c on c.oid = p.polrelid
join pg_namespace n on n.oid = c.relnamespace
where p.polrelid = ${literal(qualified("pg_temp", tableCopy))}::regclass and p.polname = ${literal(name)}`;
}

export function canonicalPolicy(raw: PolicySpec & { command: PolicyCommand }): PolicySpec {
  return { ...raw, using: raw.using ?? null, withCheck: raw.withCheck ?? null };
}

export function policyKey(spec: { table: string; name: string }): string {
  return `${spec.table}/${spec.name}`;
}

// ---------------------------------------------------------------------------------------------------------
// Grants (tables, functions, schemas): privileges per grantee, PUBLIC as "public"
// ---------------------------------------------------------------------------------------------------------

const ACL_TO_JSON = (acl: string, kind: string, owner: string): string => `coalesce((
  select jsonb_object_agg(g.grantee, g.privileges) from (
    select case when x.grantee = 0 then 'public' else pg_get_userbyid(x.grantee) end as grantee,
           jsonb_agg(x.privilege_type order by x.privilege_type) as privileges
    from aclexplode(coalesce(${acl}, acldefault('${kind}', ${owner}))) x
    group by 1) g), '{}'::jsonb)`;

export function grantsQuery(kind: GrantsSpec["target"]["kind"], schema: string): string {
  if (kind === "table") {
    return `
select 'table:' || n.nspname || '.' || c.relname as key, ${ACL_TO_JSON("c.relacl", "r", "c.relowner")} as spec
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm') and n.nspname = ${literal(schema)}`;
  }
  if (kind === "function") {
    return `
select 'function:' || p.oid::regprocedure::text as key,
       ${ACL_TO_JSON("p.proacl", "f", "p.proowner")} as spec
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = ${literal(schema)}`;
  }
  return `
select 'schema:' || n.nspname as key, ${ACL_TO_JSON("n.nspacl", "n", "n.nspowner")} as spec
from pg_namespace n where n.nspname = ${literal(schema)}`;
}

export function grantsKey(target: GrantsSpec["target"]): string {
  switch (target.kind) {
    case "table":
      return `table:${target.schema}.${target.name}`;
    case "function":
      return `function:${target.schema}.${target.name}(${target.arguments})`;
    case "schema":
      return `schema:${target.name}`;
  }
}

/** Live privileges of the spec's managed grantees (a grantee without privileges reads as []). */
export function canonicalGrants(spec: GrantsSpec, live: Record<string, Privilege[]> | undefined): GrantsSpec {
  const privileges: Record<string, Privilege[]> = {};
  for (const role of Object.keys(spec.privileges)) privileges[role] = [...(live?.[role] ?? [])].sort();
  return { target: spec.target, privileges };
}

// ---------------------------------------------------------------------------------------------------------
// Schemas, buckets, rows, features
// ---------------------------------------------------------------------------------------------------------

export function schemasQuery(name: string): string {
  return `select nspname as key, jsonb_build_object('name', nspname) as spec from pg_namespace where nspname = ${literal(name)}`;
}

/**
 * A role's attributes, memberships and what it holds beyond the model (roleFootprintQuery), as RoleSpec names them;
 * every catalog read here is readable by every role, the reviewer's own preview included.
 */
export function rolesQuery(name: string, grantedBy: readonly RoleGrant[]): string {
  return `
select r.rolname as key, jsonb_build_object(
  'name', r.rolname,
  'login', r.rolcanlogin,
  'superuser', r.rolsuper,
  'createDb', r.rolcreatedb,
  'createRole', r.rolcreaterole,
  'replication', r.rolreplication,
  'bypassRls', r.rolbypassrls,
  'memberOf', coalesce((select jsonb_agg(g.rolname order by g.rolname) from pg_catalog.pg_auth_members m
                        join pg_catalog.pg_roles g on g.oid = m.roleid where m.member = r.oid), '[]'::jsonb),
  'holds', coalesce((select jsonb_agg(f.what order by f.what) from (${roleFootprintQuery(name, grantedBy)}) f), '[]'::jsonb)
) as spec
from pg_catalog.pg_roles r where r.rolname = ${literal(name)}`;
}

/** The catalog entry (classid, objid) of an object the model grants the role something on. */
function grantedObject(grant: RoleGrant): string {
  const oid = (catalog: string, query: string) => `select 'pg_catalog.${catalog}'::regclass::oid, (${query})`;
  switch (grant.kind) {
    case "schema":
      return oid("pg_namespace", `select oid from pg_catalog.pg_namespace where nspname = ${literal(grant.name)}`);
    case "table":
      return oid("pg_class", relationOid(grant.schema, grant.name));
    case "function":
      return (
        "select 'pg_catalog.pg_proc'::regclass::oid, p.oid from pg_catalog.pg_proc p join pg_catalog.pg_namespace n " +
        `on n.oid = p.pronamespace where n.nspname = ${literal(grant.schema)} and p.proname = ${literal(grant.name)}`
      );
    case "policy":
      return (
        "select 'pg_catalog.pg_policy'::regclass::oid, p.oid from pg_catalog.pg_policy p " +
        `where p.polrelid = ${relationOid(grant.schema, grant.table)} and p.polname = ${literal(grant.name)}`
      );
  }
}

/**
 * Everything a role holds in this database that the model does not give it, from the shared dependency catalog:
 * privileges (on objects, on columns, on the database, on large objects, in default privileges), objects it owns,
 * policies that name it, and its settings (ALTER ROLE ... SET). One row per thing: `what`, in words, and
 * `remedy`, the statement that takes it away as the owner role may run it ('lo_unlink' for a large object it owns,
 * which needs the role's own rights: render.reduceRole), or null where only a person should decide (an object
 * it owns, a policy that names it).
 */
export function roleFootprintQuery(name: string, grantedBy: readonly RoleGrant[]): string {
  const managed = grantedBy.length
    ? grantedBy.map(grantedObject).join("\n  union all ")
    : "select null::oid, null::oid";
  return `
with role as (select oid, rolname from pg_catalog.pg_roles where rolname = ${literal(name)}),
here as (select oid, datname from pg_catalog.pg_database where datname = current_database()),
managed(classid, objid) as (
  ${managed}
),
dep as (
  select d.classid, d.objid, d.objsubid, d.deptype
  from pg_catalog.pg_shdepend d, role, here
  where d.refclassid = 'pg_catalog.pg_authid'::regclass and d.refobjid = role.oid and d.deptype in ('a', 'o', 'r')
    and (d.dbid = here.oid or (d.dbid = 0 and d.classid = 'pg_catalog.pg_database'::regclass and d.objid = here.oid))
    and not (d.objsubid = 0 and (d.classid, d.objid) in (select classid, objid from managed where objid is not null))
)
select case dep.deptype when 'a' then 'privileges on ' when 'o' then 'owns ' else 'is named by ' end
         || pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid) as what,
  case
    when dep.deptype = 'o' and dep.classid = 'pg_catalog.pg_largeobject'::regclass then 'lo_unlink'
    when dep.deptype <> 'a' then null
    when dep.classid = 'pg_catalog.pg_class'::regclass and dep.objsubid = 0
      then format('revoke all on table %s from %I', dep.objid::regclass, role.rolname)
    when dep.classid = 'pg_catalog.pg_class'::regclass
      then format('revoke all (%I) on table %s from %I', (select attname from pg_catalog.pg_attribute
             where attrelid = dep.objid and attnum = dep.objsubid), dep.objid::regclass, role.rolname)
    when dep.classid = 'pg_catalog.pg_namespace'::regclass
      then format('revoke all on schema %s from %I', dep.objid::regnamespace, role.rolname)
    when dep.classid = 'pg_catalog.pg_proc'::regclass
      then format('revoke all on routine %s from %I', dep.objid::regprocedure, role.rolname)
    when dep.classid = 'pg_catalog.pg_database'::regclass
      then format('revoke all on database %I from %I', (select datname from here), role.rolname)
    when dep.classid = 'pg_catalog.pg_largeobject'::regclass
      then format('revoke all on large object %s from %I', dep.objid, role.rolname)
    when dep.classid = 'pg_catalog.pg_type'::regclass
      then format('revoke all on type %s from %I', dep.objid::regtype, role.rolname)
    when dep.classid = 'pg_catalog.pg_default_acl'::regclass
      then (select format('alter default privileges for role %s%s revoke all on %s from %I', a.defaclrole::regrole,
                     case when a.defaclnamespace = 0 then '' else ' in schema ' || a.defaclnamespace::regnamespace end,
                     case a.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions'
                       when 'T' then 'types' else 'schemas' end, role.rolname)
            from pg_catalog.pg_default_acl a where a.oid = dep.objid)
  end as remedy
from dep, role
union all
select 'setting ' || c || case when s.setdatabase = 0 then '' else ' in database ' || db.datname end,
  case when s.setdatabase = 0 then format('alter role %I reset all', role.rolname)
       else format('alter role %I in database %I reset all', role.rolname, db.datname) end
from pg_catalog.pg_db_role_setting s join role on s.setrole = role.oid
left join pg_catalog.pg_database db on db.oid = s.setdatabase, unnest(s.setconfig) c`;
}

/** The schemas in which a role holds privileges (on the schema, its tables or its functions), in this database. */
export function roleGrantSchemasQuery(name: string): string {
  return `
select distinct coalesce(n.nspname, tn.nspname, fn.nspname) as schema
from pg_catalog.pg_shdepend d
left join pg_catalog.pg_namespace n on d.classid = 'pg_catalog.pg_namespace'::regclass and n.oid = d.objid
left join pg_catalog.pg_class c on d.classid = 'pg_catalog.pg_class'::regclass and c.oid = d.objid
left join pg_catalog.pg_namespace tn on tn.oid = c.relnamespace
left join pg_catalog.pg_proc p on d.classid = 'pg_catalog.pg_proc'::regclass and p.oid = d.objid
left join pg_catalog.pg_namespace fn on fn.oid = p.pronamespace
where d.deptype = 'a' and d.refobjid = (select oid from pg_catalog.pg_roles where rolname = ${literal(name)})
  and d.dbid = (select oid from pg_catalog.pg_database where datname = current_database())
  and coalesce(n.nspname, tn.nspname, fn.nspname) is not null`;
}

/** private.stage2_buckets() (model/reviewer.ts), or null; a catalog lookup, so no USAGE on private is needed. */
export const BUCKET_READER_OID =
  "(select p.oid from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace " +
  "where n.nspname = 'private' and p.proname = 'stage2_buckets' and p.pronargs = 0)";

/**
 * Where a role reads storage.buckets from: the table itself when it may (the owner role, which bypasses the
 * table's RLS), else private.stage2_buckets() (the reviewer; model/reviewer.ts says why). One row: `source`.
 */
export const BUCKET_SOURCE_QUERY = `
select case
  when (select rolbypassrls or rolsuper from pg_catalog.pg_roles where rolname = current_user)
   and coalesce(has_schema_privilege(to_regnamespace('storage'), 'USAGE'), false)
   and coalesce(has_table_privilege(${relationOid("storage", "buckets")}, 'SELECT'), false) then 'storage.buckets'
  when coalesce(has_function_privilege(${BUCKET_READER_OID}, 'EXECUTE'), false)
   and coalesce(has_schema_privilege(to_regnamespace('private'), 'USAGE'), false)
    then 'private.stage2_buckets()'
  else 'storage.buckets' end as source`;

/** `source`: storage.buckets, or what BUCKET_SOURCE_QUERY chose for the connected role. */
export function bucketsQuery(id?: string, source = "storage.buckets"): string {
  return `
select b.id as key, jsonb_build_object(
  'bucketId', b.id,
  'name', b.name,
  'public', coalesce(b.public, false),
  'fileSizeLimit', b.file_size_limit,
  'allowedMimeTypes', (select jsonb_agg(m order by m) from unnest(b.allowed_mime_types) m)
) as spec
from ${source} b where true${narrow("b.id", id)}`;
}

export function canonicalBucket(raw: BucketSpec): BucketSpec {
  return { ...raw, fileSizeLimit: raw.fileSizeLimit ?? null, allowedMimeTypes: raw.allowedMimeTypes ?? null };
}

/** A foreign key that references a seeded table: who references it, and through which columns. */
export interface ReferencingKey {
  /** Schema-qualified and quoted, ready for SQL: "public"."projects". */
  readonly referencing: string;
  readonly columns: readonly string[];
  readonly referenced: readonly string[];
}

/** The foreign keys that reference a table (one catalog query; keyed by constraint). */
export function referencingKeysQuery(schema: string, table: string): string {
  return `
select con.conrelid::text || '/' || con.conname as key, jsonb_build_object(
  'referencing', pg_catalog.format('%I.%I', n.nspname, c.relname),
  'columns', (select jsonb_agg(a.attname order by k.ord) from unnest(con.conkey) with ordinality k(num, ord)
              join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num),
  'referenced', (select jsonb_agg(a.attname order by k.ord) from unnest(con.confkey) with ordinality k(num, ord)
                 join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num)
) as spec
from pg_catalog.pg_constraint con
join pg_catalog.pg_class c on c.oid = con.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where con.contype = 'f' and con.confrelid = ${literal(qualified(schema, table))}::regclass`;
}

/** Every row of a seeded table (seeded tables are small reference tables), keyed in TypeScript by rowKey. */
export function rowsQuery(schema: string, table: string): string {
  return `select null as key, to_jsonb(t) as spec from ${qualified(schema, table)} t`;
}

export function rowKey(key: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(
    Object.keys(key)
      .sort()
      .map((k) => [k, key[k]]),
  );
}

export function canonicalRow(spec: RowSpec, live: Record<string, unknown>): RowSpec {
  const values: Record<string, RowSpec["values"][string]> = {};
  for (const column of Object.keys(spec.values)) values[column] = (live[column] ?? null) as RowSpec["values"][string];
  return { schema: spec.schema, table: spec.table, key: spec.key, values };
}
