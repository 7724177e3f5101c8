/**
 * The stack configuration (`stage2:*` keys in Pulumi.<stack>.yaml), validated once, at the edge, with every
 * problem reported together and each message naming the key and the fix. Nothing reaches the database
 * before this passes.
 */
import { DEFAULT_TIMEOUTS } from "./connection";
import { OperatorError } from "./errors";
import { z } from "zod";

/** The flags Stage 2 creates. Anything else in config is a typo or a later stage's flag. */
export const STAGE2_FLAGS = ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"] as const;
export type Stage2Flag = (typeof STAGE2_FLAGS)[number];

/** Mirrors the tables' CHECK (tenant_id ~ '^[A-Z][A-Z0-9_]{1,31}$'). */
export const TENANT_ID = /^[A-Z][A-Z0-9_]{1,31}$/;
/** Supabase project refs are 20 lowercase letters; the local stack uses "local". */
export const PROJECT_REF = /^([a-z]{20}|local)$/;
const DURATION = /^\d+(ms|s|min)$/;
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

/** A message for a missing value, and another for a value of the wrong kind or shape. */
function messages(missing: string, wrong: string): { error: (issue: { input?: unknown }) => string } {
  return { error: (issue) => (issue.input === undefined ? missing : wrong) };
}

const tenantId = z.string().regex(TENANT_ID, {
  message: "must be 2-32 characters of A-Z, 0-9 and _, starting with a letter (e.g. TELCO)",
});

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

const duration = z.string({ message: "must be a duration such as 500ms, 5s or 2min" }).regex(DURATION, {
  message: "must be a duration such as 500ms, 5s or 2min",
});

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

const DATABASE_URL_MESSAGE =
  "must be a postgresql:// URL with the password percent-encoded (Project Settings -> Database -> Connection " +
  "string: direct, or session pooler); set it with pulumi config set --secret stage2:databaseUrl 'postgresql://...'";
const ACCESS_TOKEN_MESSAGE =
  "must be a Supabase personal access token (sbp_..., no spaces; Dashboard -> Account -> Access Tokens)";
const API_URL_MESSAGE =
  "must be an https:// URL (default https://api.supabase.com); plain http only to this machine (127.0.0.1, localhost)";

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
      .string(
        messages(
          "is required: pulumi config set stage2:projectRef <ref> (Project Settings -> General -> Reference ID)",
          "must be the 20-letter Supabase project ref (Project Settings -> General), or `local` for the local stack",
        ),
      )
      .regex(PROJECT_REF, {
        message:
          "must be the 20-letter Supabase project ref (Project Settings -> General), or `local` for the local stack",
      }),
    transport: z.enum(["direct", "management-api"], { message: "must be direct or management-api" }).default("direct"),
    databaseUrl: z
      .string({ message: DATABASE_URL_MESSAGE })
      .refine(isPostgresUrl, { message: DATABASE_URL_MESSAGE })
      .optional(),
    accessToken: z
      .string({ message: ACCESS_TOKEN_MESSAGE })
      .regex(/^\S{10,}$/, { message: ACCESS_TOKEN_MESSAGE })
      .optional(),
    managementApiUrl: z.string({ message: API_URL_MESSAGE }).refine(isApiUrl, { message: API_URL_MESSAGE }).optional(),
    features: z
      .object(
        {
          tenants: z
            .array(tenantId, { message: "must be a list of tenant ids (e.g. [TELCO])" })
            .min(1, { message: "list at least one tenant id (e.g. [TELCO])" })
            .superRefine((tenants, ctx) => {
              for (const tenant of new Set(tenants.filter((t, i) => tenants.indexOf(t) !== i))) {
                ctx.addIssue({ code: "custom", message: `lists ${tenant} more than once; remove the duplicate` });
              }
            }),
          flags: z
            .array(flag, { message: `must be a list of flags (${STAGE2_FLAGS.join(", ")})` })
            .min(1, { message: `list at least one flag, or leave the key out for all of ${STAGE2_FLAGS.join(", ")}` })
            .default(STAGE2_FLAGS.map((name) => ({ name })))
            // `{ name, enabled: false }` entries count by name; listing a flag twice is harmless.
            .transform((flags) => [...new Set(flags.map((f) => f.name))]),
        },
        messages(
          "is required: pulumi config set --path 'stage2:features.tenants[0]' TELCO",
          "must be an object with tenants (and optionally flags)",
        ),
      )
      .strict(),
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
    ddl: z
      .object(
        {
          lockTimeout: duration.default(DEFAULT_TIMEOUTS.lockTimeout),
          statementTimeout: duration.default(DEFAULT_TIMEOUTS.statementTimeout),
        },
        { message: "must be an object with lockTimeout and/or statementTimeout" },
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
        },
        { message: "must be an object with requireBackup, maxBackupAgeHours and/or changeWindow" },
      )
      .strict()
      .default({ maxBackupAgeHours: 26 }),
  })
  .strict();

/**
 * Rules across keys. They run on the raw values, whatever else is wrong with them (a schema-level refinement
 * would be skipped when a field fails), so they are reported together with every other problem.
 */
function crossKeyProblems(values: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const transport = values.transport ?? "direct";
  const environment = values.environment;
  const given = (key: string): boolean => values[key] !== undefined && values[key] !== null;
  if (transport === "direct" && !given("databaseUrl")) {
    problems.push(
      "stage2:databaseUrl: is required with transport direct: pulumi config set --secret stage2:databaseUrl 'postgresql://...'",
    );
  }
  const preflight = values.preflight;
  const requireBackup =
    preflight && typeof preflight === "object" ? (preflight as { requireBackup?: unknown }).requireBackup : undefined;
  const backupRequired = typeof requireBackup === "boolean" ? requireBackup : environment === "prod";
  if (!given("accessToken")) {
    if (transport === "management-api") {
      problems.push(
        "stage2:accessToken: is required with transport management-api: pulumi config set --secret stage2:accessToken sbp_...",
      );
    } else if (backupRequired) {
      problems.push(
        "stage2:accessToken: is required to verify backups (preflight.requireBackup): " +
          "pulumi config set --secret stage2:accessToken sbp_...",
      );
    }
  }
  if ((environment === "staging" || environment === "prod") && values.projectRef === "local") {
    problems.push(`stage2:projectRef: must be a real project ref for environment ${environment}`);
  }
  return problems;
}

export type ParsedStackConfig = z.output<typeof stackConfigSchema>;

/** The validated configuration, with the defaults that depend on the environment resolved. */
export interface StackConfig extends Omit<ParsedStackConfig, "features" | "protectTables" | "preflight"> {
  readonly features: { readonly tenants: readonly string[]; readonly flags: readonly Stage2Flag[] };
  readonly protectTables: boolean;
  readonly preflight: ParsedStackConfig["preflight"] & { readonly requireBackup: boolean };
}

/** Keys whose values must be Pulumi secrets. */
export const SECRET_KEYS = ["databaseUrl", "accessToken"] as const;

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
 * Validates raw config values (keys without the `stage2:` namespace; objects may arrive as JSON strings).
 * `secretKeys` lists the keys that were set with --secret, so a secret stored in plain text is refused.
 */
export function parseStackConfig(
  raw: Readonly<Record<string, unknown>>,
  secretKeys?: ReadonlySet<string>,
): StackConfig {
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
  if (secretKeys) {
    for (const key of SECRET_KEYS) {
      if (values[key] !== undefined && !secretKeys.has(key)) {
        problems.push(
          `${keyOf([key])}: is stored in plain text; set it again with \`pulumi config set --secret stage2:${key} ...\``,
        );
      }
    }
  }
  const result = stackConfigSchema.safeParse(values);
  if (!result.success) {
    for (const issue of result.error.issues) {
      // A value that could not be read is reported once, above, not again for its shape.
      if (typeof issue.path[0] === "string" && unreadable.has(issue.path[0])) continue;
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          problems.push(
            `${keyOf([...issue.path, key])}: is not a known key; check its spelling against README.md (Configuration) or remove it`,
          );
        }
      } else {
        problems.push(`${keyOf(issue.path)}: ${issue.message}`);
      }
    }
  }
  problems.push(...crossKeyProblems(values));
  if (problems.length || !result.success) throw new ConfigError(problems);
  const c = result.data;
  return {
    ...c,
    protectTables: c.protectTables ?? c.environment === "prod",
    preflight: { ...c.preflight, requireBackup: c.preflight.requireBackup ?? c.environment === "prod" },
  };
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "postgresql:" || url.protocol === "postgres:") && url.hostname.length > 0;
  } catch {
    return false;
  }
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
