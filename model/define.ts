/**
 * Small builders that keep the Stage 2 model readable: a table reads like its CREATE TABLE, and the
 * derived names (constraints, indexes) follow PostgreSQL's own naming so that a database bootstrapped
 * by hand from the runbook's SQL already carries the names the model expects.
 */
import type {
  ColumnSpec,
  ForeignKeyAction,
  ForeignKeySpec,
  GrantTarget,
  GrantsSpec,
  IndexSpec,
  PolicyCommand,
  PolicySpec,
  Privilege,
  TableSpec,
} from "../database/specs";

export interface ColumnDef {
  readonly name: string;
  readonly type: string;
  readonly notNull?: boolean;
  readonly default?: string;
  readonly identity?: "always" | "by default";
}

export function column(name: string, type: string, options: Omit<ColumnDef, "name" | "type"> = {}): ColumnDef {
  return { name, type, ...options };
}

export interface TableDef {
  readonly name: string;
  /** One line: why the table exists. */
  readonly purpose: string;
  readonly columns: readonly ColumnDef[];
  readonly primaryKey: readonly string[];
  readonly unique?: readonly (readonly string[])[];
  readonly foreignKeys?: readonly {
    readonly columns: readonly string[];
    readonly references: string;
    readonly referencedColumns?: readonly string[];
    readonly onDelete?: ForeignKeyAction;
  }[];
  readonly checks?: Readonly<Record<string, string>>;
}

/** A modelled table: its spec plus what lives beside it. */
export interface ModelTable {
  readonly purpose: string;
  readonly spec: TableSpec;
  readonly indexes: readonly IndexSpec[];
  readonly policies: readonly PolicySpec[];
  readonly grants: GrantsSpec;
}

export function tableSpec(schema: string, def: TableDef): TableSpec {
  const columns: Record<string, ColumnSpec> = {};
  for (const c of def.columns) {
    if (columns[c.name]) throw new Error(`table ${def.name}: column ${c.name} is defined twice`);
    columns[c.name] = {
      type: c.type,
      nullable: !(c.notNull || def.primaryKey.includes(c.name) || c.identity),
      default: c.default ?? null,
      identity: c.identity ?? null,
    };
  }
  const uniques: Record<string, { columns: readonly string[] }> = {};
  for (const cols of def.unique ?? []) uniques[`${def.name}_${cols.join("_")}_key`] = { columns: cols };
  const foreignKeys: Record<string, ForeignKeySpec> = {};
  for (const fk of def.foreignKeys ?? []) {
    foreignKeys[`${def.name}_${fk.columns.join("_")}_fkey`] = {
      columns: fk.columns,
      references: fk.references,
      referencedColumns: fk.referencedColumns ?? ["id"],
      onDelete: fk.onDelete ?? "no action",
      validated: true,
    };
  }
  const checks: Record<string, { expression: string }> = {};
  for (const [name, expression] of Object.entries(def.checks ?? {}))
    checks[`${def.name}_${name}_check`] = { expression };
  return {
    schema,
    name: def.name,
    columns,
    columnOrder: def.columns.map((c) => c.name),
    primaryKey: { name: `${def.name}_pkey`, columns: def.primaryKey },
    uniques,
    foreignKeys,
    checks,
    rowLevelSecurity: true,
  };
}

/** A plain btree index named as PostgreSQL would name it: `<table>_<columns>_idx`. */
export function index(schema: string, table: string, columns: readonly string[]): IndexSpec {
  return { schema, table, name: `${table}_${columns.join("_")}_idx`, columns, unique: false, where: null, valid: true };
}

export function policy(
  schema: string,
  table: string,
  name: string,
  command: PolicyCommand,
  clauses: { using?: string; withCheck?: string },
  roles: readonly string[] = ["authenticated"],
): PolicySpec {
  return {
    schema,
    table,
    name,
    command,
    permissive: true,
    roles: [...roles].sort(),
    using: clauses.using ?? null,
    withCheck: clauses.withCheck ?? null,
  };
}

export function grants(target: GrantTarget, privileges: Readonly<Record<string, readonly Privilege[]>>): GrantsSpec {
  const sorted: Record<string, readonly Privilege[]> = {};
  for (const [role, list] of Object.entries(privileges)) sorted[role] = [...new Set(list)].sort();
  return { target, privileges: sorted };
}
