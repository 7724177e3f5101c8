/**
 * Tables: columns, keys, constraints and RLS. Converging never loses data: a column the model no longer has
 * is kept, a type change is refused, and a table that holds rows is never dropped.
 */
import { changedFields, project, type FieldChange } from "../reconcile";
import { canonicalTable, probeTableQuery, probeTableStatement, tablesQuery } from "../introspect";
import * as render from "../render";
import type { TableSpec } from "../specs";
import { hasRows, type Db } from "../db";
import { refuse, type Applied, type ObjectKind } from "./kind";

type RawTable = Parameters<typeof canonicalTable>[0];

/**
 * The steps of a table converge, in order. Every ACCESS EXCLUSIVE step is brief: what scans or builds over the
 * table's rows runs in a step that does not block the application (a concurrent index build, a constraint
 * validation), so that a converge of a populated table never holds up its readers and writers for a scan.
 */
export interface TablePlan {
  /** First, each on its own, outside a transaction: unique indexes built CONCURRENTLY (a populated table). */
  readonly concurrent: string[];
  /** Then one transaction. */
  readonly statements: string[];
  /** Then each on its own (constraint validation scans without blocking writes). */
  readonly validations: string[];
  /** Last, one transaction: what needed a validated constraint (SET NOT NULL without a scan). */
  readonly finish: string[];
  /** Changes the plan refuses to make, for one combined error. */
  readonly refused: string[];
}

/**
 * The ALTERs that take a table from `olds` (its state as read back) to `news`; `populated` when the table
 * holds rows (then nothing scans it or builds an index under an exclusive lock). Pure: the heart of the table
 * converge, tested without a database.
 */
export function planTableChanges(
  olds: TableSpec,
  news: TableSpec,
  changes: readonly FieldChange[],
  populated = false,
): TablePlan {
  const concurrent: string[] = [];
  const statements: string[] = [];
  const validations: string[] = [];
  const finish: string[] = [];
  const refused: string[] = [];
  const done = new Set<string>();
  const once = (key: string, fn: () => void): void => {
    if (!done.has(key)) {
      done.add(key);
      fn();
    }
  };
  for (const change of changes) {
    const [top, name, field] = change.path.split(".");
    switch (top) {
      case "columns": {
        const wanted = news.columns[name];
        if (!wanted) break; // dropped from the model: the column and its data stay
        const had = olds.columns[name];
        if (!had) {
          once(`add:${name}`, () => statements.push(render.addColumn(news, name)));
        } else if (field === "type") {
          refused.push(
            `column ${name} is ${had.type} in the database and ${wanted.type} in the model; ` +
              "change its type with a reviewed migration, then update the model",
          );
        } else if (field === "identity") {
          refused.push(
            `column ${name} identity is ${had.identity ?? "none"} in the database and ${wanted.identity ?? "none"} in the model`,
          );
        } else if (field === "nullable") {
          if (wanted.nullable || !populated) statements.push(render.setNullable(news, name, wanted.nullable));
          else {
            // SET NOT NULL scans every row under ACCESS EXCLUSIVE, unless a valid CHECK (c IS NOT NULL) already
            // proves it (PostgreSQL 12+): add one NOT VALID, validate it without blocking writes, then set.
            const proof = render.notNullProof(news, name);
            statements.push(proof.add);
            validations.push(proof.validate);
            finish.push(render.setNullable(news, name, false), proof.drop);
          }
        } else if (field === "default") {
          statements.push(render.setDefault(news, name, wanted.default));
        }
        break;
      }
      case "primaryKey":
        once("pk", () => {
          if (olds.primaryKey.columns.length === 0) {
            if (populated) {
              concurrent.push(render.createKeyIndex(news, news.primaryKey.name, news.primaryKey.columns));
              statements.push(render.addPrimaryKey(news, true));
            } else statements.push(render.addPrimaryKey(news));
          } else if (JSON.stringify(olds.primaryKey.columns) === JSON.stringify(news.primaryKey.columns)) {
            statements.push(render.renameConstraint(news, olds.primaryKey.name, news.primaryKey.name));
          } else {
            refused.push(
              `primary key is (${olds.primaryKey.columns.join(", ")}) in the database and ` +
                `(${news.primaryKey.columns.join(", ")}) in the model`,
            );
          }
        });
        break;
      case "uniques":
        if (!news.uniques[name]) break;
        once(`unique:${name}`, () => {
          if (olds.uniques[name]) statements.push(render.dropConstraint(news, name));
          if (populated) concurrent.push(render.createKeyIndex(news, name, news.uniques[name].columns));
          statements.push(render.addUnique(news, name, populated));
        });
        break;
      case "foreignKeys":
        if (!news.foreignKeys[name]) break;
        once(`fk:${name}`, () => {
          const had = olds.foreignKeys[name];
          const onlyValidation =
            had && changes.every((c) => !c.path.startsWith(`foreignKeys.${name}.`) || c.path.endsWith(".validated"));
          if (!onlyValidation) {
            if (had) statements.push(render.dropConstraint(news, name));
            statements.push(...render.addForeignKey(news, name));
          }
          validations.push(render.validateConstraint(news, name));
        });
        break;
      case "checks":
        if (!news.checks[name]) break;
        once(`check:${name}`, () => {
          if (olds.checks[name]) statements.push(render.dropConstraint(news, name));
          statements.push(...render.addCheck(news, name));
          validations.push(render.validateConstraint(news, name));
        });
        break;
      case "rowLevelSecurity":
        statements.push(render.rowLevelSecurity(news, news.rowLevelSecurity));
        break;
      default:
        break; // schema/name changes are replacements, handled by the engine
    }
  }
  return { concurrent, statements, validations, finish, refused };
}

async function readFresh(db: Db, spec: TableSpec): Promise<TableSpec | undefined> {
  const rows = await db.read<{ spec: RawTable }>(tablesQuery(spec.schema, spec.name));
  return rows[0] ? canonicalTable(rows[0].spec) : undefined;
}

/** What PostgreSQL prints for this spec's defaults and checks, from a temporary copy (adoption only). */
async function canonicalFormOf(db: Db, spec: TableSpec): Promise<TableSpec> {
  const probe = "stage2_probe_table";
  const rows = await db.probe<{ spec: RawTable }>([probeTableStatement(spec, probe)], probeTableQuery(probe));
  const printed = canonicalTable(rows[0].spec);
  const columns: Record<string, TableSpec["columns"][string]> = {};
  for (const [name, col] of Object.entries(spec.columns))
    columns[name] = { ...col, default: printed.columns[name]?.default ?? null };
  const checks: Record<string, { expression: string }> = {};
  for (const name of Object.keys(spec.checks)) checks[name] = printed.checks[name] ?? spec.checks[name];
  return { ...spec, columns, checks };
}

async function converge(db: Db, olds: TableSpec, news: TableSpec): Promise<Applied<TableSpec>> {
  const subject = tables.describe(news);
  const changes = changedFields(olds, news);
  const populated = changes.length > 0 && (await hasRows(db, render.tableName(news)));
  const plan = planTableChanges(olds, news, changes, populated);
  refuse(subject, plan.refused);
  for (const statement of plan.concurrent) await db.standalone(statement);
  if (plan.statements.length) await db.write(plan.statements);
  for (const validation of plan.validations) await db.write([validation]);
  if (plan.finish.length) await db.write(plan.finish);
  const observed = await readFresh(db, news);
  if (!observed) throw new Error(`${subject} disappeared while it was being converged`);
  return { observed };
}

export const tables: ObjectKind<TableSpec> = {
  describe: (spec) => `table ${spec.schema}.${spec.name}`,
  id: (spec) => `${spec.schema}.${spec.name}`,
  identityKeys: ["schema", "name"],
  canonicalForm: canonicalFormOf,

  async read(db, spec) {
    const snapshot = await db.snapshot<RawTable>(tablesQuery(spec.schema));
    const raw = snapshot.get(spec.name);
    return raw ? { live: canonicalTable(raw) } : undefined;
  },

  async create(db, spec) {
    const live = await readFresh(db, spec);
    if (!live) {
      const rows = await db.write<{ spec: RawTable }>(render.createTable(spec), tablesQuery(spec.schema, spec.name));
      return { observed: canonicalTable(rows[0].spec) };
    }
    // Adoption: compare with what PostgreSQL would print for the model, then converge only what differs.
    const expected = await canonicalFormOf(db, spec);
    return converge(db, project(live, expected, spec), spec);
  },

  update: (db, olds, news) => converge(db, olds, news),

  async delete(db, spec) {
    const live = await readFresh(db, spec);
    if (!live) return;
    const [{ count }] = await db.query<{ count: string }>(
      `select count(*)::text as count from ${render.tableName(spec)}`,
    );
    const kept = {
      kept:
        `it holds ${count} row${count === "1" ? "" : "s"} and Stage 2 never drops a table with data; it is no ` +
        "longer managed (put it back " +
        "in the model to manage it again, or archive and drop it by hand after a backup)",
    };
    if (Number(count) > 0) return kept;
    try {
      await db.write(render.dropEmptyTable(spec));
    } catch (error) {
      // A row arrived after the count: the drop stops (render.dropEmptyTable) and the table stays.
      if (/gained rows during this run/.test((error as Error).message)) return kept;
      throw error;
    }
    return undefined;
  },
};
