/**
 * The Stage 2 guardrails as plain checks over what the engine shows a policy: a resource's type, its
 * inputs, its options and its URN. policy/index.ts serves them as a policy pack; the tests call them
 * directly with violating inputs the program itself can never produce (its config refuses them first).
 *
 * Every Stage 2 object is a dynamic resource of type `pulumi-nodejs:dynamic/stage2:<Kind>`
 * (components/resource.ts); its inputs are the object's spec (database/specs.ts).
 */
import type {
  BucketSpec,
  FeatureRowsSpec,
  GrantsSpec,
  PolicySpec,
  RoleSpec,
  RowSpec,
  TableSpec,
} from "../database/specs";

export const RESOURCE_TYPE_PREFIX = "pulumi-nodejs:dynamic/stage2:";

/** What a guardrail needs to know about one resource. */
export interface ResourceFacts {
  readonly type: string;
  readonly urn: string;
  readonly props: Record<string, unknown>;
  readonly protect: boolean;
}

/** Which stacks count as production for the protection guardrail. */
export interface ProtectionScope {
  /** Values of stage2:environment whose tables must be protected (default: prod). */
  readonly environments: readonly string[];
  /** Stack names whose tables must be protected whatever their config says (default: prod). */
  readonly stacks: readonly string[];
}

export const DEFAULT_PROTECTION_SCOPE: ProtectionScope = { environments: ["prod"], stacks: ["prod"] };

export interface StackFacts {
  /** stage2:environment, or undefined when the pack was started without the stack's config. */
  readonly environment: string | undefined;
}

export interface Guardrail {
  readonly name: string;
  readonly description: string;
  /** Messages, one per violation; empty when the resource complies or is not concerned. */
  check(resource: ResourceFacts, stack: StackFacts, scope: ProtectionScope): string[];
  /**
   * For a guardrail whose verdict follows from one stack-wide setting: its messages over all of a stack's
   * resources at once, naming the setting once and each resource once. The program checks its whole model this
   * way (modelViolations); the pack, which the engine shows one resource at a time, uses `check`.
   */
  checkAll?(resources: readonly ResourceFacts[], stack: StackFacts, scope: ProtectionScope): string[];
}

/** `Table`, `Bucket`, ... for Stage 2 resources; undefined for anything else (components, the stack). */
export function kindOf(type: string): string | undefined {
  return type.startsWith(RESOURCE_TYPE_PREFIX) ? type.slice(RESOURCE_TYPE_PREFIX.length) : undefined;
}

/** The stack name inside a URN: urn:pulumi:<stack>::<project>::<type>::<name>. */
export function stackOfUrn(urn: string): string | undefined {
  const match = /^urn:pulumi:([^:]+)::/.exec(urn);
  return match?.[1];
}

/** Outputs that dynamic resources carry among their inputs; they hold live values, not requests. */
const OUTPUT_KEYS = new Set(["__provider", "observed", "status"]);

/** Paths of every `enabled` key whose value turns a flag on, anywhere in the inputs. */
export function enabledFlagPaths(value: unknown, path = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => enabledFlagPaths(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  const found: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (path === "" && OUTPUT_KEYS.has(key)) continue;
    const at = path ? `${path}.${key}` : key;
    if (key === "enabled" && turnsOn(v)) found.push(at);
    else found.push(...enabledFlagPaths(v, at));
  }
  return found;
}

function turnsOn(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") return /^(t|true|y|yes|on|1)$/i.test(v.trim());
  return v !== null && v !== undefined;
}

const qualified = (schema: unknown, name: unknown): string => `${String(schema)}.${String(name)}`;

/** The platform's roles; any other role a Stage 2 grant or policy names is one the stack owns (the reviewer). */
const PLATFORM_ROLES = new Set(["public", "anon", "authenticated", "service_role", "postgres"]);

const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);

/** The reviewer's read policy (model/reviewer.ts): SELECT, every row, for one role of the stack's own. */
function isReviewerPolicy(policy: Partial<PolicySpec>, roles: readonly string[]): boolean {
  return (
    roles.length === 1 &&
    !PLATFORM_ROLES.has(roles[0]) &&
    policy.command === "select" &&
    policy.withCheck === null &&
    policy.name === `${String(policy.table)}_reviewer_select`
  );
}

/**
 * The protection guardrail over some resources: the tables among them that are not protected in a stack that
 * counts as production, in one message per stack, naming stage2:protectTables once and each table once. One
 * setting decides the protection of every table, so a message per table would say the same thing thirteen
 * times and bury the fix.
 */
function unprotectedTables(resources: readonly ResourceFacts[], stack: StackFacts, scope: ProtectionScope): string[] {
  const byStack = new Map<string | undefined, string[]>();
  for (const { type, urn, props, protect } of resources) {
    if (kindOf(type) !== "Table" || protect) continue;
    const table = props as Partial<TableSpec>;
    const stackName = stackOfUrn(urn);
    byStack.set(stackName, [...(byStack.get(stackName) ?? []), qualified(table.schema, table.name)]);
  }
  return [...byStack].flatMap(([stackName, names]) => {
    const one = names.length === 1;
    const tables = one ? `table ${names[0]}` : `${names.length} tables (${names.join(", ")})`;
    if (stack.environment === undefined) {
      return [
        `${tables}: cannot tell whether stack ${String(stackName)} is production, because stage2:environment ` +
          "is not visible to the policy pack; run it through the analyzer shim in policy/bin " +
          "(PulumiPolicy.yaml runtime stage2-nodejs), which passes the stack's config.",
      ];
    }
    const byEnvironment = scope.environments.includes(stack.environment);
    const byName = stackName !== undefined && scope.stacks.includes(stackName);
    if (!byEnvironment && !byName) return [];
    const why = byEnvironment ? `stage2:environment is ${stack.environment}` : `the stack is named ${stackName}`;
    return [
      `${tables} ${one ? "is" : "are"} not protected although ${why}: set stage2:protectTables to true ` +
        `(the default for prod), so that no update or destroy can drop ${one ? "it" : "them"}.`,
    ];
  });
}

export const GUARDRAILS: readonly Guardrail[] = [
  {
    name: "stage2-no-feature-flag-enabled",
    description:
      "Stage 2 inserts the tenant feature rows disabled and never turns a flag on; enablement is a later stage's, by an operator.",
    check({ type, props }) {
      const kind = kindOf(type);
      const features = props as Partial<FeatureRowsSpec & RowSpec>;
      const writesFeatureRows = kind === "FeatureRows" || (kind === "SeedRow" && features.table === "features");
      if (!writesFeatureRows) return [];
      return enabledFlagPaths(props).map(
        (path) =>
          `${qualified(features.schema, features.table)}: the inputs turn a flag on at \`${path}\`; ` +
          "Stage 2 only inserts missing rows as disabled. Remove `enabled: true` from stage2:features.flags.",
      );
    },
  },
  {
    name: "stage2-attachments-bucket-private",
    description: "The Storage bucket is private: files are only reachable through the attachments_* policies.",
    check({ type, props }) {
      if (kindOf(type) !== "Bucket") return [];
      const bucket = props as Partial<BucketSpec>;
      return bucket.public === false
        ? []
        : [
            `bucket ${String(bucket.bucketId)} is not private (public: ${JSON.stringify(bucket.public)}); ` +
              "a public bucket serves every file to anyone with its URL. Stage 2 requires public: false " +
              "(model/storage.ts attachmentsBucket).",
          ];
    },
  },
  {
    name: "stage2-prod-tables-protected",
    description:
      "In production the engine may not delete a Stage 2 table (protect), so a destroy or a table dropped from the model cannot lose data.",
    check(resource, stack, scope) {
      return unprotectedTables([resource], stack, scope);
    },
    checkAll: unprotectedTables,
  },
  {
    name: "stage2-policies-authenticated-only",
    description:
      "Every Stage 2 row-level and storage policy applies to the authenticated role only, never to anon or PUBLIC; " +
      "the read-only reviewer's policies only let it read.",
    check({ type, props }) {
      if (kindOf(type) !== "Policy") return [];
      const policy = props as Partial<PolicySpec>;
      const roles = list(policy.roles).sort();
      if (roles.length === 1 && roles[0] === "authenticated") return [];
      if (isReviewerPolicy(policy, roles)) return [];
      return [
        `policy ${String(policy.name)} on ${qualified(policy.schema, policy.table)} applies to ` +
          `${JSON.stringify(roles)}; Stage 2 policies are \`to authenticated\` only (or SELECT-only for the ` +
          "stack's own reviewer role, named <table>_reviewer_select).",
      ];
    },
  },
  {
    name: "stage2-reviewer-read-only",
    description:
      "A role the stack owns (the reviewer) has no power beyond logging in, and is granted only SELECT, USAGE and EXECUTE.",
    check({ type, props }) {
      const kind = kindOf(type);
      if (kind === "Role") {
        const role = props as Partial<RoleSpec>;
        const powers = (["superuser", "createDb", "createRole", "replication", "bypassRls"] as const).filter(
          (p) => role[p] !== false,
        );
        const member = list(role.memberOf);
        return [
          ...(powers.length ? [`role ${String(role.name)} has ${powers.join(", ")}; the reviewer only reads.`] : []),
          ...(member.length
            ? [`role ${String(role.name)} is a member of ${member.join(", ")}, and holds their privileges.`]
            : []),
        ];
      }
      if (kind !== "Grants") return [];
      const grants = props as Partial<GrantsSpec>;
      return Object.entries(grants.privileges ?? {})
        .filter(([role]) => !PLATFORM_ROLES.has(role))
        .flatMap(([role, privileges]) => {
          const writes = list(privileges).filter((p) => !["SELECT", "USAGE", "EXECUTE"].includes(p));
          return writes.length ? [`grants ${writes.join(", ")} to ${role}, a role that only reads.`] : [];
        });
    },
  },
  {
    name: "stage2-tables-row-level-security",
    description: "Row-level security is enabled on every Stage 2 table; without it the policies are not enforced.",
    check({ type, props }) {
      if (kindOf(type) !== "Table") return [];
      const table = props as Partial<TableSpec>;
      return table.rowLevelSecurity === true
        ? []
        : [
            `table ${qualified(table.schema, table.name)} has row-level security off; the model enables it on every table.`,
          ];
    },
  },
  {
    name: "stage2-no-anonymous-privileges",
    description: "The anon role and PUBLIC hold no privilege on any Stage 2 table, schema or function.",
    check({ type, props }) {
      if (kindOf(type) !== "Grants") return [];
      const grants = props as Partial<GrantsSpec>;
      const target = grants.target as { kind?: string; schema?: string; name?: string } | undefined;
      const what = target ? `${target.kind} ${target.schema ? `${target.schema}.` : ""}${target.name}` : "grants";
      return ["anon", "public"].flatMap((role) => {
        const privileges = grants.privileges?.[role] ?? [];
        return privileges.length
          ? [`${what} grants ${privileges.join(", ")} to ${role}; Stage 2 grants nothing to anon or PUBLIC.`]
          : [];
      });
    },
  },
];

/**
 * The guardrails over the program's own model, before it declares anything: what the policy pack checks at
 * the engine, enforced by every preview and up whether or not the pack is passed, so a model edit that breaks
 * one fails the plain preview (the pack stays the CI workflow's second line).
 */
export function modelViolations(
  objects: readonly { readonly kind: string; readonly spec: object }[],
  stack: { readonly name: string; readonly environment: string; readonly protectTables: boolean },
  scope: ProtectionScope = DEFAULT_PROTECTION_SCOPE,
): string[] {
  const resources = objects.map(({ kind, spec }): ResourceFacts => ({
    type: `${RESOURCE_TYPE_PREFIX}${kind}`,
    urn: `urn:pulumi:${stack.name}::stage2::${RESOURCE_TYPE_PREFIX}${kind}::model`,
    props: spec as Record<string, unknown>,
    protect: kind === "Table" && stack.protectTables,
  }));
  const facts: StackFacts = { environment: stack.environment };
  return GUARDRAILS.flatMap((g) =>
    (g.checkAll
      ? g.checkAll(resources, facts, scope)
      : resources.flatMap((resource) => g.check(resource, facts, scope))
    ).map((m) => `${g.name}: ${m}`),
  );
}
