/**
 * The import graph's house rules (scripts/check-layers.ts, which `npm run check` runs over the repository): the
 * checker finds a folder importing a higher layer, a folder without a layer, and an import cycle.
 */
import { strict as assert } from "node:assert";
import { importCycles, layerViolations } from "../../scripts/check-layers";

describe("the import graph (scripts/check-layers.ts)", () => {
  it("finds a lower layer importing a higher one, a folder without a layer, and a cycle", () => {
    const graph = {
      "config/schema.ts": ["transports/direct.ts"],
      "transports/direct.ts": ["config/schema.ts"],
      "database/db.ts": ["transports/direct.ts"],
      "attic/old.ts": [],
    };
    assert.deepEqual(layerViolations(graph), [
      "attic/old.ts: the folder attic has no layer in scripts/check-layers.ts LAYERS; give it one",
      "config/schema.ts imports transports/direct.ts (config -> transports, a higher layer)",
    ]);
    assert.deepEqual(importCycles(graph), [["config/schema.ts", "transports/direct.ts"]]);
  });
});
