import { strict as assert } from "node:assert";
import { changedFields, project, recordedDifferences, replacedKeys } from "../../database/reconcile";

describe("reconcile: drift without hand-written canonicalization", () => {
  const spec = { name: "p", using: "tenant_id = 'A'", roles: ["authenticated"] };
  const printed = { name: "p", using: "(tenant_id = 'A'::text)", roles: ["authenticated"] };

  it("reads back the model's own text while the live object still prints as it did after the last write", () => {
    assert.deepEqual(project(printed, printed, spec), spec);
    assert.deepEqual(changedFields(project(printed, printed, spec), spec), []);
  });

  it("reads back the live text for a field edited out of band, and only that field", () => {
    const edited = { ...printed, using: "true" };
    const projected = project(edited, printed, spec);
    assert.deepEqual(projected, { ...spec, using: "true" });
    assert.deepEqual(changedFields(projected, spec), [{ path: "using", before: "true", after: spec.using }]);
  });

  it("without a recorded form, compares live and desired directly (adoption)", () => {
    assert.deepEqual(
      changedFields(project(printed, undefined, spec), spec).map((c) => c.path),
      ["using"],
    );
    assert.deepEqual(changedFields(project(spec, undefined, spec), spec), []);
  });

  it("omits what the live object lacks, so the diff adds it, and ignores what only the live object has", () => {
    const spec2 = { columns: { a: { type: "text" }, b: { type: "uuid" } } };
    const live = { columns: { a: { type: "text" }, extra: { type: "int" } } };
    const projected = project(live, live, spec2);
    assert.deepEqual(projected, { columns: { a: { type: "text" } } });
    assert.deepEqual(changedFields(projected, spec2), [
      { path: "columns.b", before: undefined, after: { type: "uuid" } },
    ]);
  });

  it("records the catalog's form only where it differs from the spec, and reads back exactly as the whole", () => {
    const table = {
      name: "t",
      columns: { a: { type: "text", default: "'x'" }, b: { type: "uuid", default: null } },
      checks: { c: "length(a) > 0" },
    };
    const catalog = {
      name: "t",
      columns: { a: { type: "text", default: "'x'::text" }, b: { type: "uuid", default: null }, z: { type: "int" } },
      checks: { c: "(length(a) > 0)" },
    };
    const kept = recordedDifferences(catalog, table);
    assert.deepEqual(kept, {
      columns: { a: { default: "'x'::text" }, z: { type: "int" } },
      checks: { c: "(length(a) > 0)" },
    });
    assert.deepEqual(recordedDifferences(table, table), {});
    // Whatever the live object looks like now, the projection is the one the whole record gives.
    const lives = [
      catalog,
      { ...catalog, name: "u" },
      { ...catalog, columns: { ...catalog.columns, a: { type: "varchar", default: "'x'::text" } } },
      { ...catalog, columns: { b: { type: "uuid", default: "gen_random_uuid()" } } },
      { ...catalog, checks: { c: "true" } },
      { ...catalog, checks: null },
    ];
    for (const live of lives) assert.deepEqual(project(live, kept, table), project(live, catalog, table));
  });

  it("a program change is a change even when nothing drifted", () => {
    const next = { ...spec, using: "tenant_id = 'B'" };
    assert.deepEqual(
      changedFields(project(printed, printed, spec), next).map((c) => c.path),
      ["using"],
    );
  });

  it("never reports informational keys or output-only keys as changes", () => {
    assert.deepEqual(changedFields({ columnOrder: ["a"], observed: { x: 1 } }, { columnOrder: ["b"] }), []);
  });

  it("names replacements only for identity keys", () => {
    const changes = changedFields(
      { schema: "public", name: "a", using: "x" },
      { schema: "public", name: "b", using: "y" },
    );
    assert.deepEqual(replacedKeys(changes, ["schema", "name"]), ["name"]);
  });
});
