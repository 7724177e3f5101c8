/**
 * Refuses to let the engine run provider code from the state that this program did not write
 * (components/resource.ts foreignProviderCode), before a command that reads or deletes with it:
 *
 *   node scripts/lib/run.js cli/state-guard.ts --stack <s>      (scripts/stage2.sh runs it before up,
 *                                                                     refresh and destroy)
 *
 * Exit 0: every dynamic resource carries the program's loader; 3: some do not (named, nothing was run); 2: the
 * state could not be read.
 */
import { foreignProviderCode } from "../components/resource";
import { printable } from "../config/printable";
import { pulumiEnv, runPulumi, selectedStack } from "./lib/pulumi";

export async function main(argv: string[]): Promise<number> {
  // The CLI's own ways to name the stack: --stack <s>, --stack=<s>, -s <s>; otherwise the selected one.
  const at = Math.max(argv.indexOf("--stack"), argv.indexOf("-s"));
  const inline = argv.find((a) => a.startsWith("--stack="))?.slice("--stack=".length);
  const place = { cwd: process.cwd(), env: pulumiEnv() };
  const stack = inline ?? (at >= 0 ? argv[at + 1] : await selectedStack(place.cwd, place.env));
  const result = await runPulumi(["stack", "export", "--stack", stack], place);
  if (result.code !== 0) throw new Error(result.stderr.trim().split("\n").pop());
  const exported = JSON.parse(result.stdout) as { deployment?: { resources?: [] } };
  const refusal = stateGuardRefusal(stack, exported.deployment ?? {});
  if (!refusal) return 0;
  process.stderr.write(refusal);
  return 3;
}

/**
 * The guard itself, for a stack's exported deployment (`pulumi stack export`): undefined when every dynamic
 * resource carries the program's loader, otherwise the refusal naming the others. npm run fleet runs it too,
 * before each stack's up.
 */
export function stateGuardRefusal(stack: string, deployment: { resources?: unknown[] }): string | undefined {
  const foreign = foreignProviderCode(deployment as Parameters<typeof foreignProviderCode>[0]);
  if (!foreign.length) return undefined;
  return (
    `state guard: the state of stack ${stack} holds provider code this program did not write, which the engine ` +
    `would run to read or delete these resources; nothing was run:\n${foreign
      .slice(0, 20)
      .map((urn) => ` - ${printable(urn, 300)}\n`)
      .join("")}${foreign.length > 20 ? ` - and ${foreign.length - 20} more\n` : ""}` +
    "Someone with write access to the state changed it (a backend credential that should only read?). Restore " +
    "the last good checkpoint (`pulumi stack history`, `pulumi stack import`), then rotate what the up job holds.\n"
  );
}

export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`state guard: could not read the state: ${error.message}\n`);
      process.exit(2);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
