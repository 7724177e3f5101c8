/**
 * The stack configuration (`stage2:*` keys in Pulumi.<stack>.yaml) and the credentials of the environment
 * (config/credentials.ts), validated once, at the edge, with every problem reported together and each message
 * naming the key or variable and the fix. Nothing reaches the database before this passes.
 */
import {
  CREDENTIAL_VARIABLES,
  credentialsSchema,
  missingDatabaseUrlProblem,
  RETIRED_SETTINGS,
  retiredSettingProblem,
  type Credentials,
} from "./credentials";
import { isLoopback, parseDatabaseUrl } from "./database-url";
import { DDL_DURATIONS, DEFAULT_TIMEOUTS, durationProblem, type DurationRange } from "./durations";
import { OperatorError } from "./errors";
import { printable } from "./printable";
import { PROJECT_ROOT } from "./project";
import { resolveTenants, tenantList } from "./tenants";
import { z } from "zod";

/** The flags Stage 2 creates. Anything else in config is a typo or a later stage's flag. */
export const STAGE2_FLAGS = ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"] as const;
export type Stage2Flag = (typeof STAGE2_FLAGS)[number];

/** Supabase project refs are 20 lowercase letters; the local stack uses "local". */
export const PROJECT_REF = /^([a-z]{20}|local)$/;
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

/** A message for a missing value, and another for a value of the wrong kind or shape. */
function messages(missing: string, wrong: string): { error: (issue: { input?: unknown }) => string } {
  return { error: (issue) => (issue.input === undefined ? missing : wrong) };
}

const FLAG_NAME_MESSAGE = `must be one of ${STAGE2_FLAGS.join(", ")}`;

/**
 * A flag is its name, or `{ name, enabled: false }`. A bare name is read as the object form, so a problem
 * is reported on the field it is about (an unknown name, or `enabled: true`) rather than as "neither form".
 */
const flag = z.preprocess(
  (value) => (typeof value === "string" ? { name: value } : value),
  z
    .object(
      {
        name: z.enum(STAGE2_FLAGS, { message: FLAG_NAME_MESSAGE }),
        enabled: z
          .literal(false, {
            message:
              "Stage 2 never enables a flag: remove `enabled: true` (flags are turned on in a later stage, by an operator)",
          })
          .optional(),
      },
      { message: `must be a flag name (${STAGE2_FLAGS.join(", ")}) or { name, enabled: false }` },
    )
    .strict(),
);

/** A duration within `range` (config/durations.ts). */
const duration = (range: DurationRange) =>
  z.unknown().superRefine((value, ctx) => {
    const problem = durationProblem(value, range);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }) as unknown as z.ZodType<string>;

const HH_MM_MESSAGE = "must be HH:MM on a 24-hour clock (e.g. 09:00)";

export const changeWindowSchema = z
  .object(
    {
      timezone: z
        .string({ message: "must be an IANA time zone such as Europe/London or UTC" })
        .refine(isTimeZone, { message: "must be an IANA time zone such as Europe/London or UTC" }),
      days: z
        .array(z.enum(WEEKDAYS, { message: `must be one of ${WEEKDAYS.join(", ")}` }), {
          message: `must be a list of weekdays (${WEEKDAYS.join(", ")})`,
        })
        .min(1, { message: `list at least one weekday (${WEEKDAYS.join(", ")})` }),
      start: z.string({ message: HH_MM_MESSAGE }).regex(HHMM, { message: HH_MM_MESSAGE }),
      end: z.string({ message: HH_MM_MESSAGE }).regex(HHMM, { message: HH_MM_MESSAGE }),
    },
    { message: "must be an object with timezone, days, start and end" },
  )
  .strict()
  .refine((w) => !HHMM.test(w.start) || !HHMM.test(w.end) || w.start < w.end, {
    message: "start must be before end; a window cannot span midnight, so split it over two days",
  });

const NAMES = (what: string) =>
  z.array(z.string({ message: `must be the name of a ${what} of the model` }), {
    message: `must be a list of ${what} names`,
  });

/**
 * The runbook's "Rollback and remediation", as state the stack keeps (cli/rollback.ts writes it): objects
 * taken out of the model on purpose, so that `up` removes them and does not put them back until they leave
 * this list again. Every run logs it, with the reason.
 */
export const rollbackSchema = z
  .object(
    {
      reason: z
        .string({ message: "must say why, in a sentence (it is logged on every run)" })
        .trim()
        .min(10, { message: "must say why, in a sentence (it is logged on every run)" })
        .transform((reason) => printable(reason, 300)),
      policies: NAMES("policy").default([]),
      indexes: NAMES("index").default([]),
      seeds: z
        .array(
          z.string().regex(/^(partner_org|partner_normalization|features):.+$/, {
            message: "must be partner_org:<id>, partner_normalization:<alias> or features:<TENANT>/<FLAG>",
          }),
          { message: "must be a list of seed keys" },
        )
        .default([]),
      bucket: z.boolean({ message: "must be true or false" }).default(false),
    },
    { message: "must be an object with reason and policies, indexes, seeds and/or bucket" },
  )
  .strict();

export type Rollback = z.output<typeof rollbackSchema>;

const SYSTEM_IDENTIFIER_MESSAGE =
  "must be the cluster's system identifier, digits in quotes (select system_identifier from pg_control_system())";
const API_URL_MESSAGE =
  "must be an https:// URL (default https://api.supabase.com); plain http only to this machine (127.0.0.1, localhost)";

export const REVIEWER_DEFAULT_NAME = "stage2_reviewer";

/**
 * The platform's own roles and those of its extensions (supabase/postgres migrations and ansible roles: pgsodium's
 * key roles, pg_tle's admin, the pooler's, the realtime and ETL admins...): the reviewer must be a role of its own,
 * because up reduces it to exactly the model's powers.
 */
const PLATFORM_ROLE =
  /^(postgres|anon|authenticated|service_role|authenticator|dashboard_user|pgbouncer|pgsodium_.*|pgtle_.*|pgmq_.*|pg_.*|public|supabase_.*|cli_login_.*|realtime_.*|rds_.*|cloudsqlsuperuser|azure_.*)$/;
const REVIEWER_NAME_MESSAGE =
  "must be a new role's name (lowercase letters, digits and _), not one of the platform's or an extension's roles; the default is stage2_reviewer";

export const stackConfigSchema = z
  .object({
    environment: z.enum(
      ["local", "staging", "prod"],
      messages(
        "is required: pulumi config set stage2:environment <local|staging|prod>",
        "must be local, staging or prod",
      ),
    ),
    projectRef: z
      .string({
        message:
          "must be the 20-letter Supabase project ref (Project Settings -> General), or `local` for the local stack",
      })
      .regex(PROJECT_REF, {
        message:
          "must be the 20-letter Supabase project ref (Project Settings -> General), or `local` for the local stack",
      })
      .optional(),
    target: z
      .discriminatedUnion(
        "kind",
        [
          z.object({ kind: z.literal("supabase") }).strict(),
          z
            .object({
              kind: z.literal("self-hosted"),
              systemIdentifier: z
                .string({ message: SYSTEM_IDENTIFIER_MESSAGE })
                .regex(/^[1-9]\d{0,19}$/, { message: SYSTEM_IDENTIFIER_MESSAGE }),
            })
            .strict(),
        ],
        { message: 'must be { kind: supabase } or { kind: self-hosted, systemIdentifier: "<digits>" }' },
      )
      .default({ kind: "supabase" }),
    transport: z.enum(["direct", "management-api"], { message: "must be direct or management-api" }).default("direct"),
    managementApiUrl: z.string({ message: API_URL_MESSAGE }).refine(isApiUrl, { message: API_URL_MESSAGE }).optional(),
    managementApiAllowHost: z
      .string({ message: "must be the host name of stage2:managementApiUrl, to allow a host that is not Supabase's" })
      .optional(),
    features: z
      .object(
        {
          tenants: tenantList.optional(),
          tenantsFile: z
            .string({ message: "must be a path relative to the project, such as data/tenants.txt" })
            .min(1, { message: "must be a path relative to the project, such as data/tenants.txt" })
            .optional(),
          flags: z
            .array(flag, { message: `must be a list of flags (${STAGE2_FLAGS.join(", ")})` })
            .min(1, { message: `list at least one flag, or leave the key out for all of ${STAGE2_FLAGS.join(", ")}` })
            .default(STAGE2_FLAGS.map((name) => ({ name })))
            // `{ name, enabled: false }` entries count by name; listing a flag twice is harmless.
            .transform((flags) => [...new Set(flags.map((f) => f.name))]),
        },
        messages(
          "is required: pulumi config set --path 'stage2:features.tenants[0]' TELCO",
          "must be an object with tenants or tenantsFile (and optionally flags)",
        ),
      )
      .strict()
      .superRefine((features, ctx) => {
        if ((features.tenants === undefined) === (features.tenantsFile === undefined)) {
          ctx.addIssue({
            code: "custom",
            message:
              "set exactly one of tenants (a list, e.g. [TELCO]) and tenantsFile (a text file in the project, one " +
              "tenant id per line, for long lists: docs/configuration.md)",
          });
        }
      }),
    bucket: z
      .object(
        {
          fileSizeLimit: z
            .number({ message: "must be a positive whole number of bytes, or null for no limit" })
            .int({ message: "must be a positive whole number of bytes, or null for no limit" })
            .positive({ message: "must be a positive whole number of bytes, or null for no limit" })
            .nullable()
            .default(null),
          allowedMimeTypes: z
            .array(
              z.string().regex(/^[\w.+-]+\/[\w.+*-]+$/, { message: "must be a MIME type such as application/pdf" }),
            )
            .min(1, { message: "list at least one MIME type, or use null to allow any" })
            .nullable()
            .default(null),
        },
        { message: "must be an object with fileSizeLimit and/or allowedMimeTypes" },
      )
      .strict()
      .default({ fileSizeLimit: null, allowedMimeTypes: null }),
    seedsFile: z
      .string({ message: "must be a path relative to the project, such as data/partners.yaml" })
      .min(1, { message: "must be a path relative to the project, such as data/partners.yaml" })
      .default("data/partners.yaml"),
    protectTables: z.boolean({ message: "must be true or false" }).optional(),
    reviewer: z
      .object(
        {
          name: z
            .string({ message: REVIEWER_NAME_MESSAGE })
            .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: REVIEWER_NAME_MESSAGE })
            .refine((name) => !PLATFORM_ROLE.test(name), { message: REVIEWER_NAME_MESSAGE })
            .default(REVIEWER_DEFAULT_NAME),
        },
        {
          message: `must be an object with the role's name (its password is ${CREDENTIAL_VARIABLES.reviewerPassword} in the environment)`,
        },
      )
      .strict()
      .optional(),
    rollback: rollbackSchema.optional(),
    ddl: z
      .object(
        {
          lockTimeout: duration(DDL_DURATIONS.lockTimeout).default(DEFAULT_TIMEOUTS.lockTimeout),
          statementTimeout: duration(DDL_DURATIONS.statementTimeout).default(DEFAULT_TIMEOUTS.statementTimeout),
          lockRetryBudget: duration(DDL_DURATIONS.lockRetryBudget).default(DEFAULT_TIMEOUTS.lockRetryBudget),
        },
        { message: "must be an object with lockTimeout, statementTimeout and/or lockRetryBudget" },
      )
      .strict()
      .default(DEFAULT_TIMEOUTS),
    preflight: z
      .object(
        {
          requireBackup: z.boolean({ message: "must be true or false" }).optional(),
          maxBackupAgeHours: z
            .number({ message: "must be a positive number of hours (e.g. 26)" })
            .positive({ message: "must be a positive number of hours (e.g. 26)" })
            .default(26),
          changeWindow: changeWindowSchema.optional(),
          backupCommand: z
            .string({ message: "must be a shell command that exits 0 when a usable backup exists" })
            .min(1, { message: "must be a shell command that exits 0 when a usable backup exists" })
            .optional(),
          backupCommandEnv: z
            .array(
              z
                .string()
                .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "must be an environment variable's name" })
                .refine((name) => !/^(STAGE2_|PULUMI_)/.test(name), {
                  message:
                    "must not pass a STAGE2_ or PULUMI_ variable (the owner's credentials and the state's passphrase)",
                }),
              { message: "must be a list of environment variable names the backup command needs" },
            )
            .default([]),
          backupWaiver: z
            .string({ message: "must be the reason no backup is checked (logged on every run)" })
            .trim()
            .min(10, { message: "must say in a sentence why no backup is checked (logged on every run)" })
            .transform((reason) => printable(reason, 200))
            .optional(),
        },
        {
          message:
            "must be an object with requireBackup, maxBackupAgeHours, backupCommand, backupCommandEnv, backupWaiver and/or changeWindow",
        },
      )
      .strict()
      .default({ maxBackupAgeHours: 26, backupCommandEnv: [] }),
  })
  .strict();

/**
 * Rules across keys. They run on the raw values, whatever else is wrong with them (a schema-level refinement
 * would be skipped when a field fails), so they are reported together with every other problem.
 */
function crossKeyProblems(
  values: Readonly<Record<string, unknown>>,
  credentials: Credentials,
  use: ConfigUse,
): string[] {
  const problems: string[] = [];
  const transport = values.transport ?? "direct";
  const environment = values.environment;
  const given = (key: string): boolean => values[key] !== undefined && values[key] !== null;
  const { accessToken: ACCESS_TOKEN, reviewerPassword: REVIEWER_PASSWORD } = CREDENTIAL_VARIABLES;
  if (transport === "direct" && !credentials.databaseUrl) problems.push(missingDatabaseUrlProblem());
  const preflight = (typeof values.preflight === "object" && values.preflight) || {};
  const { requireBackup, backupCommand, backupWaiver } = preflight as Record<string, unknown>;
  const backupRequired = typeof requireBackup === "boolean" ? requireBackup : environment === "prod";
  const selfHosted = (values.target as { kind?: unknown } | undefined)?.kind === "self-hosted";
  if (!credentials.accessToken) {
    if (transport === "management-api") {
      problems.push(`${ACCESS_TOKEN}: is required with transport management-api: export ${ACCESS_TOKEN}=sbp_...`);
    } else if (backupRequired && !selfHosted && backupCommand === undefined && use === "change") {
      problems.push(
        `${ACCESS_TOKEN}: is required to verify backups (stage2:preflight.requireBackup): export ${ACCESS_TOKEN}=sbp_...`,
      );
    }
  }
  // Whoever connects as the owner runs the reviewer's drift check (a login with its password) or sets the password.
  if (given("reviewer") && !credentials.reviewerPassword && !connectsAs(values.reviewer, credentials, transport)) {
    problems.push(
      `${REVIEWER_PASSWORD}: is required with stage2:reviewer when connecting as the owner (up sets the role's ` +
        `password, a preview checks that it logs in): export ${REVIEWER_PASSWORD}=$(openssl rand -hex 24) once, ` +
        "and keep it where the up job's other secrets are",
    );
  }
  if (selfHosted) {
    if (given("projectRef")) {
      problems.push(
        "stage2:projectRef: must not be set with stage2:target.kind self-hosted (a self-hosted database is known by " +
          "its systemIdentifier, not a project ref); remove it",
      );
    }
    if (transport === "management-api") {
      problems.push(
        "stage2:transport: management-api reaches Supabase's platform only; a self-hosted database needs transport " +
          "direct and STAGE2_DATABASE_URL",
      );
    }
    if (backupRequired && backupCommand === undefined) {
      problems.push(
        "stage2:preflight.backupCommand: is required to check the backups of a self-hosted database " +
          "(a command that exits 0 when a usable backup exists), unless preflight.requireBackup is false " +
          "with a preflight.backupWaiver saying why",
      );
    }
  } else if (!given("projectRef")) {
    problems.push(
      "stage2:projectRef: is required: pulumi config set stage2:projectRef <ref> (Project Settings -> General -> " +
        "Reference ID), or set stage2:target to { kind: self-hosted, systemIdentifier } for a self-hosted database",
    );
  }
  if (environment === "prod" && requireBackup === false && backupWaiver === undefined) {
    problems.push(
      "stage2:preflight.backupWaiver: is required when a prod stack sets requireBackup: false; say why no backup " +
        "is checked (it is logged on every run)",
    );
  }
  if ((environment === "staging" || environment === "prod") && values.projectRef === "local") {
    problems.push(`stage2:projectRef: must be a real project ref for environment ${environment}`);
  }
  const apiUrl = typeof values.managementApiUrl === "string" ? values.managementApiUrl : undefined;
  const apiHost = apiUrl && isApiUrl(apiUrl) ? new URL(apiUrl).hostname : undefined;
  if (apiHost && !isSupabaseApiHost(apiHost) && values.managementApiAllowHost !== apiHost) {
    problems.push(
      `stage2:managementApiUrl: ${apiHost} is not Supabase's Management API (api.supabase.com); the access token ` +
        `would be sent there and its answers trusted by the backups check. If you mean it, also set ` +
        `stage2:managementApiAllowHost to ${apiHost}`,
    );
  }
  return problems;
}

/** Whether the connection logs in as the reviewer itself (its own preview): then its password is the URL's. */
function connectsAs(reviewer: unknown, credentials: Credentials, transport: unknown): boolean {
  if (transport !== "direct" || !credentials.databaseUrl) return false;
  const name = (reviewer as { name?: unknown } | null)?.name ?? REVIEWER_DEFAULT_NAME;
  const user = parseDatabaseUrl(credentials.databaseUrl, PROJECT_ROOT).target?.user;
  return user !== undefined && roleOfUser(user) === name;
}

/** The role a connection's user logs in as: Supabase's pooler adds the project ref (`stage2_reviewer.<ref>`). */
export function roleOfUser(user: string): string {
  return user.replace(/\.[a-z]{20}$/, "");
}

/** Supabase's own API, or this machine (a test server). */
function isSupabaseApiHost(host: string): boolean {
  return host === "api.supabase.com" || isLoopback(host.replace(/^\[(.*)\]$/, "$1"));
}

export type ParsedStackConfig = z.output<typeof stackConfigSchema>;

/**
 * The validated configuration, with the defaults that depend on the environment resolved, and the credentials of
 * the environment beside the settings they go with.
 */
export interface StackConfig extends Omit<ParsedStackConfig, "features" | "protectTables" | "preflight" | "reviewer"> {
  readonly features: { readonly tenants: readonly string[]; readonly flags: readonly Stage2Flag[] };
  readonly protectTables: boolean;
  readonly preflight: ParsedStackConfig["preflight"] & { readonly requireBackup: boolean };
  /** STAGE2_DATABASE_URL. */
  readonly databaseUrl?: string;
  /** STAGE2_ACCESS_TOKEN. */
  readonly accessToken?: string;
  /** `password`: STAGE2_REVIEWER_PASSWORD; absent in the reviewer's own preview, which logged in with it. */
  readonly reviewer?: { readonly name: string; readonly password?: string };
}

export class ConfigError extends OperatorError {
  constructor(readonly problems: readonly string[]) {
    super("ConfigError", `Invalid stack configuration (nothing was changed):\n - ${problems.join("\n - ")}`);
  }
}

function keyOf(path: readonly PropertyKey[]): string {
  let key = "stage2:";
  path.forEach((part, i) => {
    key += typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`;
  });
  return key;
}

/**
 * What the configuration is read for. A run that may change the database needs everything its preflight
 * checks (the token the backups check reads); one that only reads, a preview, does not: the read-only
 * reviewer's job holds no Management API token, and its preflight leaves the backups to `up`.
 */
export type ConfigUse = "change" | "read";

export interface ParseOptions {
  /** The credentials of the environment (config/credentials.ts credentialsFrom). */
  readonly credentials?: Credentials;
  readonly use?: ConfigUse;
}

/**
 * Raw config values with the objects the engine hands over as JSON text (a value set whole rather than with
 * --path) decoded; a value that cannot be decoded is a problem naming its key, and is left as it was.
 */
export function decodeStackValues(raw: Readonly<Record<string, unknown>>): {
  values: Record<string, unknown>;
  problems: string[];
  unreadable: Set<string>;
} {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const unreadable = new Set<string>();
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === "string" && /^[[{]/.test(value.trim())) {
      try {
        values[key] = JSON.parse(value);
        continue;
      } catch {
        problems.push(`${keyOf([key])}: is not valid YAML/JSON; check its brackets, quotes and commas`);
        unreadable.add(key);
      }
    }
    values[key] = value;
  }
  return { values, problems, unreadable };
}

/**
 * Validates raw config values (keys without the `stage2:` namespace; objects may arrive as JSON strings) and the
 * credentials of the environment.
 */
export function parseStackConfig(raw: Readonly<Record<string, unknown>>, options: ParseOptions = {}): StackConfig {
  const { credentials = {}, use = "change" } = options;
  const { values, problems, unreadable } = decodeStackValues(raw);
  problems.push(...retiredSettings(values));
  const result = stackConfigSchema.safeParse(values);
  if (!result.success) {
    for (const issue of result.error.issues) {
      // A value that could not be read is reported once, above, not again for its shape.
      if (typeof issue.path[0] === "string" && unreadable.has(issue.path[0])) continue;
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          problems.push(
            `${keyOf([...issue.path, key])}: is not a known key; check its spelling against docs/configuration.md or remove it`,
          );
        }
      } else {
        problems.push(`${keyOf(issue.path)}: ${issue.message}`);
      }
    }
  }
  problems.push(...credentialProblems(credentials));
  problems.push(...crossKeyProblems(values, credentials, use));
  const tenants = result.success ? resolveTenants(result.data.features, PROJECT_ROOT) : undefined;
  problems.push(...(tenants?.problems ?? []));
  if (problems.length || !result.success) throw new ConfigError(problems);
  const c = result.data;
  return {
    ...c,
    features: { tenants: tenants!.tenants, flags: c.features.flags },
    protectTables: c.protectTables ?? c.environment === "prod",
    preflight: { ...c.preflight, requireBackup: c.preflight.requireBackup ?? c.environment === "prod" },
    databaseUrl: credentials.databaseUrl,
    accessToken: credentials.accessToken,
    reviewer: c.reviewer && { name: c.reviewer.name, password: credentials.reviewerPassword },
  };
}

/**
 * Settings that held credentials in earlier releases, each named with the way to move it; they are taken out of
 * `values` so that nothing else is reported about them.
 */
function retiredSettings(values: Record<string, unknown>): string[] {
  const found = Object.keys(RETIRED_SETTINGS).filter((setting) => {
    const [key, field] = setting.split(".");
    const holder = field ? values[key] : values;
    if (holder === null || typeof holder !== "object" || !((field ?? key) in holder)) return false;
    delete (holder as Record<string, unknown>)[field ?? key];
    return true;
  });
  return found.map(retiredSettingProblem);
}

/** The credentials' own problems, each naming its environment variable (never the value). */
function credentialProblems(credentials: Credentials): string[] {
  const problems: string[] = [];
  const result = credentialsSchema.safeParse(credentials);
  for (const issue of result.success ? [] : result.error.issues) {
    problems.push(`${CREDENTIAL_VARIABLES[issue.path[0] as keyof Credentials]}: ${issue.message}`);
  }
  if (credentials.databaseUrl) {
    for (const problem of parseDatabaseUrl(credentials.databaseUrl, PROJECT_ROOT).problems) {
      problems.push(`${CREDENTIAL_VARIABLES.databaseUrl}: ${problem}`);
    }
  }
  return problems;
}

/** The API gets the access token with every request: https, or plain http only to this machine. */
function isApiUrl(value: string): boolean {
  try {
    const url = new URL(value);
    if (url.protocol === "https:") return url.hostname.length > 0;
    return url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  } catch {
    return false;
  }
}

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}
