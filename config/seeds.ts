/**
 * The partner seed file (data/partners.yaml, or the stack's `stage2:seedsFile`), validated before anything
 * is changed: every problem is reported together, naming the row and the fix.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
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
            label: z.string().trim().min(1, { message: "must not be empty" }).max(200),
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

export class SeedFileError extends Error {
  constructor(
    file: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid seed file ${file} (nothing was changed):\n - ${problems.join("\n - ")}`);
    this.name = "SeedFileError";
  }
}

/** Validates parsed seed data; `file` only names the source in messages. */
export function validateSeeds(data: unknown, file: string): PartnerSeeds {
  const problems: string[] = [];
  const result = seedFileSchema.safeParse(data);
  if (!result.success) {
    for (const issue of result.error.issues) {
      problems.push(
        `${issue.path
          .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
          .join("")
          .replace(/^\./, "")}: ${issue.message}`,
      );
    }
    throw new SeedFileError(file, problems);
  }
  const seeds = result.data;
  const duplicates = (values: string[]): string[] => values.filter((v, i) => values.indexOf(v) !== i);
  for (const id of new Set(duplicates(seeds.partner_orgs.map((o) => o.id))))
    problems.push(`partner_orgs: id "${id}" is listed more than once`);
  for (const label of new Set(duplicates(seeds.partner_orgs.map((o) => o.label)))) {
    problems.push(`partner_orgs: label "${label}" is listed more than once (labels are unique in partner_org)`);
  }
  for (const alias of new Set(duplicates(seeds.normalizations.map((n) => n.alias)))) {
    problems.push(`normalizations: alias "${alias}" is listed more than once`);
  }
  const ids = new Set(seeds.partner_orgs.map((o) => o.id));
  seeds.normalizations.forEach((n, i) => {
    if (!ids.has(n.partner_org)) {
      problems.push(
        `normalizations[${i}].partner_org: "${n.partner_org}" is not an id in partner_orgs; add the org or fix the id`,
      );
    }
  });
  if (problems.length) throw new SeedFileError(file, problems);
  return seeds;
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
