import { strict as assert } from "node:assert";
import { changedFields, project, replacedKeys } from "../../database/reconcile";

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
