import { strict as assert } from "node:assert";
import { planTableChanges } from "../../database/kinds/tables";
import { changedFields } from "../../database/reconcile";
import * as render from "../../database/render";
import type { TableSpec } from "../../database/specs";
import { ident, literal } from "../../database/sql";
import { STAGE2_TABLES } from "../../model/stage2";

const projects = STAGE2_TABLES.find((t) => t.spec.name === "projects")!.spec;

describe("SQL rendering", () => {
  it("quotes every identifier and literal, whatever it contains", () => {
    assert.equal(ident('we"ird'), '"we""ird"');
    assert.equal(literal("O'Brien; drop table x; --"), "'O''Brien; drop table x; --'");
    assert.throws(() => ident("a\u0000b"), /NUL/);
    assert.match(
      render.createIndex(
        {
          schema: "public",
          table: "projects",
          name: "x",
          columns: ["tenant_id"],
          unique: false,
          where: null,
          valid: true,
        },
        true,
      ),
      /^create index concurrently if not exists "x" on "public"."projects" using btree \("tenant_id"\)$/,
    );
  });

  it("creates a table with RLS in the same batch, and never without it", () => {
    const [create, rls] = render.createTable(projects);
    assert.match(create, /^create table if not exists "public"."projects"/);
    assert.equal(rls, 'alter table "public"."projects" enable row level security');
  });

  it("revokes then grants exactly the listed privileges", () => {
    assert.deepEqual(render.setPrivileges({ kind: "table", schema: "public", name: "t" }, "anon", []), [
      'revoke all on table "public"."t" from "anon"',
    ]);
    assert.deepEqual(render.setPrivileges({ kind: "schema", name: "private" }, "public", ["USAGE"]), [
      'revoke all on schema "private" from public',
      'grant usage on schema "private" to public',
    ]);
  });
});

describe("table converge plans", () => {
  const without = (spec: TableSpec, column: string): TableSpec => {
    const columns = { ...spec.columns };
    delete columns[column];
    return { ...spec, columns };
  };

  it("adds a missing column and keeps columns the model dropped", () => {
    const live = without(projects, "derived_status");
    const plan = planTableChanges(live, projects, changedFields(live, projects));
    assert.deepEqual(plan.statements, [render.addColumn(projects, "derived_status")]);
    const dropped = without(projects, "stage_application");
    assert.deepEqual(planTableChanges(projects, dropped, changedFields(projects, dropped)).statements, []);
  });

  it("re-enables RLS and restores a default", () => {
    const live = {
      ...projects,
      rowLevelSecurity: false,
      columns: { ...projects.columns, stage: { ...projects.columns.stage, default: null } },
    };
    const plan = planTableChanges(live, projects, changedFields(live, projects));
    assert.deepEqual(
      plan.statements.sort(),
      [render.rowLevelSecurity(projects, true), render.setDefault(projects, "stage", "'intake'::text")].sort(),
    );
  });

  it("refuses a type change, naming the column and the fix, with every problem together", () => {
    const live = {
      ...projects,
      columns: {
        ...projects.columns,
        name: { ...projects.columns.name, type: "integer" },
        tenant_id: { ...projects.columns.tenant_id, type: "uuid" },
      },
    };
    const plan = planTableChanges(live, projects, changedFields(live, projects));
    assert.equal(plan.refused.length, 2);
    assert.match(plan.refused.join("\n"), /column name is integer in the database and text in the model.*migration/);
  });

  it("on a populated table, sets NOT NULL through a validated CHECK and builds key indexes concurrently", () => {
    const live = {
      ...projects,
      columns: { ...projects.columns, name: { ...projects.columns.name, nullable: true } },
      uniques: {},
    };
    const keyed = { ...projects, uniques: { projects_name_key: { columns: ["name"] } } };
    const plan = planTableChanges(live, keyed, changedFields(live, keyed), true);
    assert.deepEqual(plan.concurrent, [
      'create unique index concurrently if not exists "projects_name_key_stage2new" on "public"."projects" ("name")',
    ]);
    assert.deepEqual(plan.statements.sort(), [
      'alter table "public"."projects" add constraint "projects_name_key" unique using index "projects_name_key_stage2new"',
      'alter table "public"."projects" add constraint "projects_name_stage2_not_null" check ("name" is not null) not valid',
    ]);
    assert.deepEqual(plan.validations, [
      'alter table "public"."projects" validate constraint "projects_name_stage2_not_null"',
    ]);
    assert.deepEqual(plan.finish, [
      'alter table "public"."projects" alter column "name" set not null',
      'alter table "public"."projects" drop constraint if exists "projects_name_stage2_not_null"',
    ]);
    // On an empty table the plain forms are as good, and one transaction.
    const empty = planTableChanges(live, keyed, changedFields(live, keyed), false);
    assert.deepEqual([empty.concurrent, empty.validations, empty.finish], [[], [], []]);
  });

  it("adds constraints NOT VALID and validates them separately, so writes are not blocked by the scan", () => {
    const name = "projects_tenant_id_check";
    const live = { ...projects, checks: {} };
    const plan = planTableChanges(live, projects, changedFields(live, projects));
    assert.match(plan.statements[0], /add constraint "projects_tenant_id_check" check \(.*\) not valid$/);
    assert.deepEqual(plan.validations, [render.validateConstraint(projects, name)]);
  });
});
