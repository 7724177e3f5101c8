/**
 * The connection string of a stack's read-only reviewer (model/reviewer.ts), which pull-request previews and the
 * drift check connect as, so that an operator can preview as the reviewer without editing anything:
 *
 *   STAGE2_DATABASE_URL="$(npm run -s reviewer-url -- --stack local)" scripts/stage2.sh preview --stack local
 *
 * It derives the URL from the owner's (STAGE2_DATABASE_URL: host, port, database and TLS settings), the stack's
 * stage2:reviewer name and STAGE2_REVIEWER_PASSWORD, the way the provider logs the reviewer in to check its
 * password (config/database-url.ts urlForRole). It connects to nothing. The URL holds the reviewer's password, so
 * it goes to stdout alone, for a `"$(...)"` expansion to put in the environment of the next command; every
 * problem goes to stderr.
 */
import { CREDENTIAL_VARIABLES, credentialsFrom, readFromTerminal, type Credentials } from "../config/credentials";
import { parseDatabaseUrl, urlForRole } from "../config/database-url";
import { PROJECT_ROOT } from "../config/project";
import { decodeStackValues, REVIEWER_DEFAULT_NAME, stackConfigSchema } from "../config/schema";
import { pulumiJson } from "./lib/stack-config";
import { pulumiEnv, stackArgument } from "./lib/pulumi";

export const USAGE = `Usage: npm run -s reviewer-url -- --stack <stack>

Prints the connection URL of the stack's read-only reviewer role (stage2:reviewer) on stdout, and nothing else:
the host, port, database and TLS settings of STAGE2_DATABASE_URL (the owner's URL), the reviewer's user (its
name, or <name>.<ref> through Supabase's pooler, as postgres.<ref> is the owner's) and STAGE2_REVIEWER_PASSWORD.

The URL holds the reviewer's password: it is a secret. Put it in the environment of the command that needs it,
never on a command line, in a file or in a log:

  STAGE2_DATABASE_URL="$(npm run -s reviewer-url -- --stack local)" scripts/stage2.sh preview --stack local

(-s keeps npm's own lines off stdout.) The reviewer can preview; its up is refused before any change.
`;

/** The stack's stage2:* values (keys without the namespace), as `pulumi config --json` gives them. */
export type StackValues = Readonly<Record<string, unknown>>;

/**
 * The reviewer's URL for a stack's configuration and the credentials of the environment, or every problem that
 * stops it, each naming the variable or key and the fix. Pure: the configuration is read by the caller.
 */
export function reviewerUrl(
  stack: string,
  raw: StackValues,
  credentials: Credentials,
): { url: string; problems?: undefined } | { url?: undefined; problems: string[] } {
  const { values, problems, unreadable } = decodeStackValues(raw);
  const { databaseUrl: DATABASE_URL, reviewerPassword: REVIEWER_PASSWORD } = CREDENTIAL_VARIABLES;
  let name: string | undefined;
  if (values.reviewer === undefined) {
    problems.push(
      `stage2:reviewer: stack ${stack} has no reviewer role (the role exists only on stacks that configure it). Add ` +
        `it with \`scripts/stage2.sh config set --path stage2:reviewer.name ${REVIEWER_DEFAULT_NAME} --stack ${stack}\`, ` +
        `then run up as the owner with ${REVIEWER_PASSWORD} set, which creates the role with that password`,
    );
  } else if (!unreadable.has("reviewer")) {
    // The program's own rules for the name (a role of its own, not the platform's), and its default.
    const reviewer = stackConfigSchema.shape.reviewer.safeParse(values.reviewer);
    if (reviewer.success) name = reviewer.data?.name;
    for (const issue of reviewer.success ? [] : reviewer.error.issues) {
      problems.push(`stage2:reviewer${issue.path.map((p) => `.${String(p)}`).join("")}: ${issue.message}`);
    }
  }
  if ((values.transport ?? "direct") !== "direct") {
    problems.push(
      `stage2:transport: stack ${stack} uses ${String(values.transport)}, whose runs reach the database through the ` +
        "Management API, not a database URL: the reviewer's URL serves stacks with transport direct only",
    );
  }
  if (!credentials.databaseUrl) {
    problems.push(
      `${DATABASE_URL}: is not set. The reviewer's URL is derived from the owner's URL of the stack's database ` +
        `(postgres, what up connects as): ${readFromTerminal(DATABASE_URL)}`,
    );
  } else {
    for (const problem of parseDatabaseUrl(credentials.databaseUrl, PROJECT_ROOT).problems) {
      problems.push(`${DATABASE_URL}: ${problem}`);
    }
  }
  if (!credentials.reviewerPassword) {
    problems.push(
      `${REVIEWER_PASSWORD}: is not set. It is the reviewer's password, the one the owner's up set; put it in the environment without a command line: ${readFromTerminal(REVIEWER_PASSWORD)}`,
    );
  }
  if (problems.length || !name || !credentials.databaseUrl || !credentials.reviewerPassword) return { problems };
  return { url: urlForRole(credentials.databaseUrl, name, credentials.reviewerPassword) };
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const stack = stackArgument(argv);
  if (!stack) {
    process.stderr.write(`reviewer-url: give the stack: --stack <stack> (scripts/stage2.sh stack ls lists them)\n`);
    return 2;
  }
  // Plain `pulumi config`, not --show-secrets: the reviewer's name is not secret, so no passphrase is needed.
  const place = { cwd: process.cwd(), env: pulumiEnv() };
  let raw: Record<string, { value?: unknown; objectValue?: unknown }>;
  try {
    raw = (await pulumiJson(["config", "--stack", stack], place)) as typeof raw;
  } catch (error) {
    process.stderr.write(
      `reviewer-url: cannot read the configuration of stack ${stack}: ${(error as Error).message} ` +
        `(the stacks of this backend: scripts/stage2.sh stack ls; the backend: PULUMI_BACKEND_URL)\n`,
    );
    return 2;
  }
  const values = Object.fromEntries(
    Object.entries(raw)
      .filter(([key]) => key.startsWith("stage2:"))
      .map(([key, entry]) => [key.slice("stage2:".length), entry.objectValue ?? entry.value]),
  );
  const result = reviewerUrl(stack, values, credentialsFrom(process.env));
  if (result.problems) {
    process.stderr.write(
      `reviewer-url: no URL printed:\n${result.problems.map((problem) => ` - ${problem}\n`).join("")}`,
    );
    return 2;
  }
  process.stdout.write(`${result.url}\n`);
  return 0;
}

export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`reviewer-url: ${error.message}\n`);
      process.exit(2);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
