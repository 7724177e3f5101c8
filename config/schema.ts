/**
 * The stack configuration (`stage2:*` keys in Pulumi.<stack>.yaml), validated once, at the edge, with every
 * problem reported together and each message naming the key and the fix. Nothing reaches the database
 * before this passes.
 */
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

const tenantId = z.string().regex(TENANT_ID, {
  message: "must be 2-32 characters of A-Z, 0-9 and _, starting with a letter (e.g. TELCO)",
});

const flag = z.union(
  [
    z.enum(STAGE2_FLAGS, { message: `must be one of ${STAGE2_FLAGS.join(", ")}` }),
    z
      .object({
        name: z.enum(STAGE2_FLAGS, { message: `must be one of ${STAGE2_FLAGS.join(", ")}` }),
        enabled: z
          .literal(false, {
            message:
              "Stage 2 never enables a flag: remove `enabled: true` (flags are turned on in a later stage, by an operator)",
          })
          .optional(),
      })
      .strict(),
  ],
  { message: `must be a flag name (${STAGE2_FLAGS.join(", ")}) or { name, enabled: false }` },
);

const duration = z.string().regex(DURATION, { message: "must be a duration such as 500ms, 5s or 2min" });

export const changeWindowSchema = z
  .object({
    timezone: z.string().refine(isTimeZone, { message: "must be an IANA time zone such as Europe/London or UTC" }),
    days: z.array(z.enum(WEEKDAYS, { message: `must be one of ${WEEKDAYS.join(", ")}` })).min(1),
    start: z.string().regex(HHMM, { message: "must be HH:MM (24h)" }),
    end: z.string().regex(HHMM, { message: "must be HH:MM (24h)" }),
  })
  .strict()
  .refine((w) => w.start < w.end, { message: "start must be before end (windows do not span midnight)" });

export const stackConfigSchema = z
  .object({
    environment: z.enum(["local", "staging", "prod"], { message: "must be local, staging or prod" }),
    projectRef: z.string().regex(PROJECT_REF, {
      message:
        "must be the 20-letter Supabase project ref (Project Settings -> General), or `local` for the local stack",
    }),
    transport: z.enum(["direct", "management-api"], { message: "must be direct or management-api" }).default("direct"),
    databaseUrl: z
      .string()
      .refine(isPostgresUrl, {
        message:
          "must be a postgresql:// URL (Project Settings -> Database -> Connection string, session pooler or direct)",
      })
      .optional(),
    accessToken: z.string().min(10, { message: "must be a Supabase personal access token (sbp_...)" }).optional(),
    managementApiUrl: z.string().url({ message: "must be an https URL (default https://api.supabase.com)" }).optional(),
    features: z
      .object({
        tenants: z
          .array(tenantId)
          .min(1, { message: "list at least one tenant id (e.g. [TELCO])" })
          .refine((t) => new Set(t).size === t.length, { message: "lists a tenant more than once" }),
        flags: z
          .array(flag)
          .min(1)
          .default([...STAGE2_FLAGS]),
      })
      .strict(),
    bucket: z
      .object({
        fileSizeLimit: z
          .number()
          .int()
          .positive({ message: "must be a positive number of bytes" })
          .nullable()
          .default(null),
        allowedMimeTypes: z
          .array(z.string().regex(/^[\w.+-]+\/[\w.+*-]+$/, { message: "must be a MIME type such as application/pdf" }))
          .min(1)
          .nullable()
          .default(null),
      })
      .strict()
      .default({ fileSizeLimit: null, allowedMimeTypes: null }),
    seedsFile: z.string().min(1).default("data/partners.yaml"),
    protectTables: z.boolean().optional(),
    ddl: z
      .object({ lockTimeout: duration.default("5s"), statementTimeout: duration.default("120s") })
      .strict()
      .default({ lockTimeout: "5s", statementTimeout: "120s" }),
    preflight: z
      .object({
        requireBackup: z.boolean().optional(),
        maxBackupAgeHours: z.number().positive().default(26),
        changeWindow: changeWindowSchema.optional(),
      })
      .strict()
      .default({ maxBackupAgeHours: 26 }),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.transport === "direct" && !c.databaseUrl) {
      ctx.addIssue({
        code: "custom",
        path: ["databaseUrl"],
        message: "is required with transport direct: pulumi config set --secret stage2:databaseUrl 'postgresql://...'",
      });
    }
    if (c.transport === "management-api" && !c.accessToken) {
      ctx.addIssue({
        code: "custom",
        path: ["accessToken"],
        message: "is required with transport management-api: pulumi config set --secret stage2:accessToken sbp_...",
      });
    }
    if (c.environment !== "local" && c.projectRef === "local") {
      ctx.addIssue({
        code: "custom",
        path: ["projectRef"],
        message: `must be a real project ref for environment ${c.environment}`,
      });
    }
    const backupRequired = c.preflight.requireBackup ?? c.environment === "prod";
    if (backupRequired && !c.accessToken) {
      ctx.addIssue({
        code: "custom",
        path: ["accessToken"],
        message:
          "is required to verify backups (preflight.requireBackup): pulumi config set --secret stage2:accessToken sbp_...",
      });
    }
  });

export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type ParsedStackConfig = z.output<typeof stackConfigSchema>;

/** The validated configuration, with the defaults that depend on the environment resolved. */
export interface StackConfig extends Omit<ParsedStackConfig, "features" | "protectTables" | "preflight"> {
  readonly features: { readonly tenants: readonly string[]; readonly flags: readonly Stage2Flag[] };
  readonly protectTables: boolean;
  readonly preflight: ParsedStackConfig["preflight"] & { readonly requireBackup: boolean };
}

/** Keys whose values must be Pulumi secrets. */
export const SECRET_KEYS = ["databaseUrl", "accessToken"] as const;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid stack configuration (nothing was changed):\n - ${problems.join("\n - ")}`);
    this.name = "ConfigError";
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
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === "string" && /^[[{]/.test(value.trim())) {
      try {
        values[key] = JSON.parse(value);
        continue;
      } catch {
        problems.push(`${keyOf([key])}: is not valid YAML/JSON`);
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
      const message =
        issue.code === "unrecognized_keys"
          ? `unknown key(s) ${issue.keys.join(", ")}; check the spelling against README.md (Configuration)`
          : issue.message;
      problems.push(`${keyOf(issue.path)}: ${message}`);
    }
  }
  if (problems.length || !result.success) throw new ConfigError(problems);
  const c = result.data;
  const flags = [...new Set(c.features.flags.map((f) => (typeof f === "string" ? f : f.name)))];
  return {
    ...c,
    features: { tenants: c.features.tenants, flags },
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

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}
