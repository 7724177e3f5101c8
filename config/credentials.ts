/**
 * Credentials come from the environment of the command that runs, never from the stack configuration.
 *
 * The engine hands a dynamic provider the stack's whole configuration and stores it in the state as that
 * provider's inputs (pulumi/pulumi pkg/resource/deploy/target.go: "For dynamic providers, we always pass the
 * full configuration"), encrypted with the stack's secrets provider. Every pull-request preview must open the
 * stack, so its job holds that secrets provider: a credential kept in the configuration is one `pulumi stack
 * export --show-secrets` away from any branch, in every checkpoint the backend keeps. In the environment, a
 * credential reaches only the job it is given to: the owner's URL, the Management API token and the reviewer's
 * password the approval-gated `up`; the reviewer's URL the previews. The stack then holds no secret at all.
 */
import { z } from "zod";

/** Each credential and the environment variable it comes from. */
export const CREDENTIAL_VARIABLES = {
  databaseUrl: "STAGE2_DATABASE_URL",
  accessToken: "STAGE2_ACCESS_TOKEN",
  reviewerPassword: "STAGE2_REVIEWER_PASSWORD",
} as const;

export type CredentialName = keyof typeof CREDENTIAL_VARIABLES;
export type Credentials = { readonly [K in CredentialName]?: string };
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * How to put a credential in the environment of the commands that follow without typing it on a command line,
 * which stays in the shell's history and, while it runs, in every process list (ps, /proc/<pid>/cmdline):
 * `read -s` takes it from the terminal, unechoed.
 */
export function readFromTerminal(variable: string): string {
  return `\`read -rs ${variable} && export ${variable}\`, paste it, press Enter (in CI: the job's secret)`;
}

/**
 * What to do when STAGE2_DATABASE_URL is not set. A `"$(...)"` expansion, as shown for the reviewer's and the
 * local stack's URLs, puts another command's output in the variable, never in history or an argument list.
 */
export function missingDatabaseUrlProblem(): string {
  const v = CREDENTIAL_VARIABLES.databaseUrl;
  return (
    `${v}: is not set. It is the URL of the database of the stack named by --stack, and comes from the ` +
    `environment only, never a command line (the shell's history and the process list keep it): ` +
    `${readFromTerminal(v)}. The owner's URL (postgres) for up; a preview may use the read-only reviewer's: ` +
    `${v}="$(npm run -s reviewer-url -- --stack <stack>)"; the local stack's: ` +
    `export ${v}="$(npm run -s localdb -- url)" (README: Credentials)`
  );
}

/** The credentials set in `env` (an empty variable counts as unset). */
export function credentialsFrom(env: Environment): Credentials {
  const credentials: Partial<Record<CredentialName, string>> = {};
  for (const [name, variable] of Object.entries(CREDENTIAL_VARIABLES) as [CredentialName, string][]) {
    if (env[variable]) credentials[name] = env[variable];
  }
  return credentials;
}

/** `env` without any credential: for child processes that need none (the backup command, the policy pack). */
export function withoutCredentials(env: Environment): Record<string, string> {
  const variables = new Set<string>(Object.values(CREDENTIAL_VARIABLES));
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => !variables.has(entry[0]) && entry[1] !== undefined,
    ),
  );
}

/**
 * Stack settings that held credentials in earlier releases: refused with the way to move each, so that no
 * credential stays where a preview job can decrypt it.
 */
export const RETIRED_SETTINGS: Readonly<Record<string, { readonly variable: string; readonly remove: string }>> = {
  databaseUrl: { variable: CREDENTIAL_VARIABLES.databaseUrl, remove: "pulumi config rm stage2:databaseUrl" },
  accessToken: { variable: CREDENTIAL_VARIABLES.accessToken, remove: "pulumi config rm stage2:accessToken" },
  "reviewer.password": {
    variable: CREDENTIAL_VARIABLES.reviewerPassword,
    remove: "pulumi config rm --path stage2:reviewer.password",
  },
};

export function retiredSettingProblem(setting: string): string {
  const { variable, remove } = RETIRED_SETTINGS[setting];
  return (
    `stage2:${setting}: credentials are no longer stack configuration (the engine copies the configuration into ` +
    `the state, which every preview job can decrypt). Set ${variable} in the environment of the command instead, ` +
    `run \`${remove} --stack <stack>\`, then rotate the credential: earlier checkpoints still hold it ` +
    `(README: Credentials)`
  );
}

/**
 * The weakest reviewer password accepted: 10^22 guesses (about 2^73) as zxcvbn estimates them. 24 random bytes in
 * hex (openssl rand -hex 24) are estimated at 10^47 and 12 at 10^23; a phrase of dictionary words such as
 * stage2-demo-reviewer-password at 10^20, a character repeated at 10^2. The password guards a role that can read
 * the seed and feature tables, and its SCRAM verifier sits in pg_authid.
 */
const MIN_GUESSES_LOG10 = 22;

let estimator: { check(password: string): { guessesLog10: number } } | undefined;

/** log10 of the guesses zxcvbn estimates for `password` (its dictionaries load on first use, not at start). */
export function passwordGuessesLog10(password: string): number {
  if (!estimator) {
    const { ZxcvbnFactory } = require("@zxcvbn-ts/core") as typeof import("@zxcvbn-ts/core");
    const common = require("@zxcvbn-ts/language-common") as typeof import("@zxcvbn-ts/language-common");
    estimator = new ZxcvbnFactory({ dictionary: common.dictionary, graphs: common.adjacencyGraphs });
  }
  return estimator.check(password).guessesLog10;
}

const PRINTABLE_PASSWORD = /^[\x21-\x7e]{16,128}$/;
const REVIEWER_PASSWORD_MESSAGE =
  "must be 16 to 128 printable ASCII characters without spaces (e.g. the output of openssl rand -hex 24)";

export const credentialsSchema = z.object({
  databaseUrl: z.string().optional(),
  accessToken: z
    .string()
    .regex(/^\S{10,}$/, {
      message: "must be a Supabase personal access token (sbp_..., no spaces; Dashboard -> Account -> Access Tokens)",
    })
    .optional(),
  reviewerPassword: z
    .string()
    .regex(PRINTABLE_PASSWORD, { message: REVIEWER_PASSWORD_MESSAGE })
    // One problem at a time: a password of the wrong shape is not also measured.
    .refine((password) => !PRINTABLE_PASSWORD.test(password) || passwordGuessesLog10(password) >= MIN_GUESSES_LOG10, {
      message:
        "is too easy to guess (a word, a pattern or a repeated character); use a random one: openssl rand -hex 24",
    })
    .optional(),
});
