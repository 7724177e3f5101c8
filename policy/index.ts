/**
 * Policy pack `stage2-guardrails`: the Stage 2 invariants, checked by the engine on every resource at
 * preview and up, and blocking (mandatory) when broken:
 *
 *   pulumi preview --policy-pack policy [--policy-pack-config <file>]
 *
 * The engine starts it through the analyzer shim in policy/bin (named by the project's Pulumi.yaml)
 * (PulumiPolicy.yaml explains the runtime name), in this folder, with the stack's config in
 * PULUMI_CONFIG: that is how the protection guardrail reads stage2:environment. Modules come from the
 * repository's node_modules; nothing is installed here.
 *
 * Policy config (optional, --policy-pack-config): which stacks count as production, e.g.
 *   { "stage2-prod-tables-protected": { "environments": ["prod", "staging"], "stacks": ["prod"] } }
 */
import * as pulumi from "@pulumi/pulumi";
import { PolicyPack, type ResourceValidationPolicy } from "@pulumi/policy";
import { fromResource } from "../database/wire";
import { DEFAULT_PROTECTION_SCOPE, GUARDRAILS, kindOf, type ProtectionScope, type StackFacts } from "./guardrails";

const PROTECTION_POLICY = "stage2-prod-tables-protected";

function stackFacts(): StackFacts {
  return { environment: new pulumi.Config("stage2").get("environment") };
}

function scopeFrom(config: Partial<ProtectionScope>): ProtectionScope {
  return {
    environments: config.environments ?? DEFAULT_PROTECTION_SCOPE.environments,
    stacks: config.stacks ?? DEFAULT_PROTECTION_SCOPE.stacks,
  };
}

const stringList = (description: string, defaults: readonly string[]) => ({
  type: "array" as const,
  items: { type: "string" as const },
  default: [...defaults],
  description,
});

const policies: ResourceValidationPolicy[] = GUARDRAILS.map((guardrail) => ({
  name: guardrail.name,
  description: guardrail.description,
  enforcementLevel: "mandatory",
  ...(guardrail.name === PROTECTION_POLICY
    ? {
        configSchema: {
          properties: {
            environments: stringList(
              "Values of stage2:environment whose tables must be protected.",
              DEFAULT_PROTECTION_SCOPE.environments,
            ),
            stacks: stringList("Stack names whose tables must be protected.", DEFAULT_PROTECTION_SCOPE.stacks),
          },
        },
      }
    : {}),
  validateResource: (args, reportViolation) => {
    // The engine's shape of a spec (sets as maps, database/wire.ts) read back as the code's.
    const kind = kindOf(args.type);
    const props = kind ? fromResource(kind, args.props) : args.props;
    const facts = { type: args.type, urn: args.urn, props, protect: args.opts.protect };
    const scope = scopeFrom(args.getConfig<Partial<ProtectionScope>>());
    for (const message of guardrail.check(facts, stackFacts(), scope)) reportViolation(message);
  },
}));

new PolicyPack("stage2-guardrails", {
  description: "Stage 2 guardrails: no flag enabled, private bucket, protected prod tables, authenticated-only access.",
  enforcementLevel: "mandatory",
  policies,
});
