/**
 * The partner seed file (data/partners.yaml, or the stack's `stage2:seedsFile`), validated before anything
 * is changed: every problem is reported together, naming the row and the fix.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { OperatorError } from "./errors";
import { z } from "zod";

const PARTNER_KINDS = ["vendor", "delivery_partner", "channel_partner"] as const;

const seedFileSchema = z
  .object({
    partner_orgs: z
      .array(
        z
          .object({
            id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
              message: "must be lower-case letters, digits and dashes (e.g. vendor-x)",
            }),
            // Stored exactly as written (quotes and SQL metacharacters included; values travel as bind
            // parameters), so surrounding spaces are refused rather than silently trimmed.
            label: z
              .string({ message: "must be a text label such as Vendor X" })
              .min(1, { message: "must not be empty" })
              .max(200, { message: "must be at most 200 characters" })
              .refine((l) => l === l.trim(), { message: "must not start or end with spaces" }),
            kind: z.enum(PARTNER_KINDS, { message: `must be one of ${PARTNER_KINDS.join(", ")}` }),
          })
          .strict(),
      )
      .min(1),
    normalizations: z
      .array(
        z
          .object({
            alias: z
              .string()
              .min(1)
              .max(200)
              .refine((a) => a === a.trim().toLowerCase(), {
                message: "must be lower-case with no surrounding spaces (aliases are matched after lower(btrim(...)))",
              }),
            partner_org: z.string().min(1),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

export type PartnerSeeds = z.output<typeof seedFileSchema>;

export class SeedFileError extends OperatorError {
  constructor(
    file: string,
    readonly problems: readonly string[],
  ) {
    super("SeedFileError", `Invalid seed file ${file} (nothing was changed):\n - ${problems.join("\n - ")}`);
  }
}

/** The string fields of the rows of a list, however malformed the rest (for checks across rows). */
function fieldsOf(list: unknown, field: string): (string | undefined)[] {
  return Array.isArray(list)
    ? list.map((row) => {
        const value = row && typeof row === "object" ? (row as Record<string, unknown>)[field] : undefined;
        return typeof value === "string" ? value : undefined;
      })
    : [];
}

/**
 * Validates parsed seed data; `file` only names the source in messages. Checks across rows (duplicates,
 * references) run even when some row is malformed, so every problem is reported in one go.
 */
export function validateSeeds(data: unknown, file: string): PartnerSeeds {
  const problems: string[] = [];
  const result = seedFileSchema.safeParse(data);
  if (!result.success) {
    const where = (path: readonly PropertyKey[]): string =>
      path
        .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
        .join("")
        .replace(/^\./, "") || "(file)";
    for (const issue of result.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) problems.push(`${where([...issue.path, key])}: is not a known field; remove it`);
      } else {
        problems.push(`${where(issue.path)}: ${issue.message}`);
      }
    }
  }
  const root = data && typeof data === "object" ? (data as Record<string, unknown>) : {};
  const orgIds = fieldsOf(root.partner_orgs, "id");
  const duplicates = (values: (string | undefined)[]): string[] => [
    ...new Set(values.filter((v, i): v is string => v !== undefined && values.indexOf(v) !== i)),
  ];
  for (const id of duplicates(orgIds)) problems.push(`partner_orgs: id "${id}" is listed more than once`);
  for (const label of duplicates(fieldsOf(root.partner_orgs, "label"))) {
    problems.push(`partner_orgs: label "${label}" is listed more than once (labels are unique in partner_org)`);
  }
  for (const alias of duplicates(fieldsOf(root.normalizations, "alias"))) {
    problems.push(`normalizations: alias "${alias}" is listed more than once`);
  }
  const ids = new Set(orgIds);
  fieldsOf(root.normalizations, "partner_org").forEach((org, i) => {
    if (org !== undefined && !ids.has(org)) {
      problems.push(
        `normalizations[${i}].partner_org: "${org}" is not an id in partner_orgs; add the org or fix the id`,
      );
    }
  });
  if (problems.length || !result.success) throw new SeedFileError(file, problems);
  return result.data;
}

/** Loads and validates a seed file, relative to the project root. */
export function loadSeeds(file: string, root = path.join(__dirname, "..")): PartnerSeeds {
  const full = path.resolve(root, file);
  let text: string;
  try {
    text = fs.readFileSync(full, "utf8");
  } catch {
    throw new SeedFileError(file, [`cannot read ${full}; check stage2:seedsFile`]);
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new SeedFileError(file, [`is not valid YAML: ${(error as Error).message}`]);
  }
  return validateSeeds(data, file);
}
