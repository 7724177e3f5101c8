/**
 * The shape a spec takes in the engine's inputs and outputs, which is what `pulumi preview --diff` prints.
 *
 * The engine diffs an array by position: a revoked SELECT read `~ [2]: "UPDATE" => "SELECT"` and
 * `+ [3]: "UPDATE"`, and a deleted feature row read as another row renamed. So every set-valued field travels
 * as a map keyed by its elements (`SELECT: true`), and the diff names the element added or removed. The rest
 * of the code (model, introspection, reconcile, rendering) keeps plain sorted arrays.
 *
 * `fromResource` also reads the arrays that state written before this shape holds, so existing stacks read
 * back without a spurious change (provider/index.ts converts every bag the engine hands over).
 */
import { tenantListName } from "./specs";
import { tenantsDigest } from "./stack-config";

type Bag = Record<string, unknown>;

/** Set-valued fields per kind; `a.*` is every value of the map `a`. */
const SET_FIELDS: Readonly<Record<string, readonly string[]>> = {
  Role: ["memberOf", "holds"],
  Grants: ["privileges.*"],
  Policy: ["roles"],
  PolicySet: ["names", "unexpected"],
  Bucket: ["allowedMimeTypes"],
  FeatureRows: ["flags", "excluded", "missing"],
  VerificationReport: ["expect.features_missing"],
};

const asMap = (value: unknown): unknown =>
  Array.isArray(value) ? Object.fromEntries(value.map((element) => [String(element), true])) : value;

const asArray = (value: unknown): unknown =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? Object.keys(value).sort() : value;

/** Applies `convert` at `path` ("a", "a.b", "a.*") of a copy of `bag`. */
function at(bag: Bag, path: readonly string[], convert: (value: unknown) => unknown): Bag {
  const [head, ...rest] = path;
  if (!(head in bag) && head !== "*") return bag;
  if (head === "*") {
    return Object.fromEntries(
      Object.entries(bag).map(([k, v]) => [k, rest.length ? at(v as Bag, rest, convert) : convert(v)]),
    );
  }
  const value = bag[head];
  if (!rest.length) return { ...bag, [head]: convert(value) };
  if (value === null || typeof value !== "object") return bag;
  return { ...bag, [head]: at(value as Bag, rest, convert) };
}

function convertAll(kind: string, bag: Bag, convert: (value: unknown) => unknown): Bag {
  return (SET_FIELDS[kind] ?? []).reduce((out, path) => at(out, path.split("."), convert), bag);
}

/** The engine's shape of a spec: set-valued fields as maps. */
export function toResource<S extends object>(kind: string, spec: S): Bag {
  return convertAll(kind, spec as Bag, asMap);
}

/** The code's shape of a bag from the engine, whichever shape the state was written in. */
export function fromResource(kind: string, bag: Bag): Bag {
  return convertAll(kind, UPGRADES[kind]?.(bag) ?? bag, asArray);
}

/** State written before a spec changed shape (beyond sets), read as the current shape. */
const UPGRADES: Readonly<Record<string, (bag: Bag) => Bag>> = {
  /** What each unexpected policy lets through was not read before the plan named access by role. */
  PolicySet: (bag) => ("table" in bag ? { unexpectedTo: [], ...bag } : bag),
  /**
   * The password was a stack setting (stage2:reviewer.password) before credentials left the configuration; what
   * the role holds beyond the model was not read. `grantedBy: null` says the state does not know what the model
   * grants, so holds are not checked until the next up records it (database/kinds/roles.ts).
   */
  Role(bag) {
    if (!("name" in bag)) return bag;
    const password = bag.password === "stage2:reviewer.password" ? "STAGE2_REVIEWER_PASSWORD" : bag.password;
    return { holds: [], grantedBy: null, ...bag, password };
  },
  /**
   * `present: { tenant: [flags] }` became tenants, flags, and the rows missing among tenants x flags; rows can
   * be excluded (a rollback), none before.
   */
  FeatureRows(bag) {
    const excluded = bag.excluded ?? [];
    if ("present" in bag) {
      const { present, ...rest } = bag as { present: Record<string, string[]> } & Bag;
      const tenants = Object.keys(present).sort();
      const flags = [...new Set(Object.values(present).flat())].sort();
      const missing = tenants.flatMap((t) => flags.filter((f) => !present[t].includes(f)).map((f) => `${t}/${f}`));
      return { ...rest, tenants: tenantListName(tenants), appliedTenants: tenants, flags, excluded, missing };
    }
    // The tenant list itself (an array, then a map keyed by tenant) became its name; outputs keep the list.
    if (typeof bag.tenants === "object" && bag.tenants !== null) {
      const tenants = asArray(bag.tenants) as string[];
      return { ...bag, tenants: tenantListName(tenants), appliedTenants: tenants, excluded };
    }
    return { ...bag, excluded };
  },
  /**
   * The report no longer carries a digest of what it verifies (it made every drift look like a report change),
   * nor the tenant list (its digest instead); its feature check lists what is missing, and it knows rollbacks.
   */
  VerificationReport(bag) {
    const { revision: _revision, ...report } = bag;
    // Rollbacks came later: nothing was rolled back before them.
    const expectations: Bag = {
      absentIndexColumns: [],
      bucketAbsent: false,
      excludedFeatures: [],
      ...(report.expectations as Bag),
    };
    if (Array.isArray(expectations.tenants)) {
      expectations.tenantsDigest = tenantsDigest(expectations.tenants as string[]);
      delete expectations.tenants;
    }
    const expect = { ...(report.expect as Bag) };
    const present = expect.features_present as Record<string, Record<string, boolean>> | undefined;
    if (present) {
      expect.features_missing = Object.entries(present).flatMap(([tenant, flags]) =>
        Object.keys(flags)
          .filter((flag) => !flags[flag])
          .map((flag) => `${tenant}/${flag}`),
      );
      delete expect.features_present;
    }
    return { ...report, expectations, expect };
  },
};
