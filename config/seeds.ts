/**
 * The partner seed file (data/partners.yaml, or the stack's `stage2:seedsFile`), validated before anything
 * is changed: every problem is reported together, naming the row and the fix.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, YAMLError } from "yaml";
import { OperatorError } from "./errors";
import { hasControlCharacters } from "./printable";
import { z } from "zod";

/** Seeds are reference data, one engine object per row: a file past these is a mistake, not a seed file. */
export const SEED_LIMITS = { bytes: 1024 * 1024, rows: 1000 } as const;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Text that PostgreSQL stores as written and a terminal shows as meant: well-formed Unicode (no lone surrogate,
 * which the engine cannot even carry), no NUL (PostgreSQL's text cannot hold it), no control character.
 */
const storableText = (field: string) =>
  z
    .string({ message: `must be a text ${field}` })
    .refine((t) => !LONE_SURROGATE.test(t), {
      message: "holds a lone UTF-16 surrogate (a broken \\u escape); fix the text",
    })
    .refine((t) => !t.includes("\u0000"), { message: "holds a NUL character, which PostgreSQL text cannot store" })
    .refine((t) => !hasControlCharacters(t), {
      message: "holds a control character (tab, newline, ESC...); remove it",
    });

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
            label: storableText("label such as Vendor X")
              .min(1, { message: "must not be empty" })
              .max(200, { message: "must be at most 200 characters" })
              .refine((l) => l === l.trim(), { message: "must not start or end with spaces" }),
            kind: z.enum(PARTNER_KINDS, { message: `must be one of ${PARTNER_KINDS.join(", ")}` }),
          })
          .strict(),
      )
      .min(1)
      .max(SEED_LIMITS.rows, { message: `lists more than ${SEED_LIMITS.rows} rows, the limit for seed data` }),
    normalizations: z
      .array(
        z
          .object({
            alias: storableText("alias")
              .min(1)
              .max(200)
              .refine((a) => a === a.trim().toLowerCase(), {
                message: "must be lower-case with no surrounding spaces (aliases are matched after lower(btrim(...)))",
              }),
            partner_org: z.string().min(1),
          })
          .strict(),
      )
      .max(SEED_LIMITS.rows, { message: `lists more than ${SEED_LIMITS.rows} rows, the limit for seed data` })
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
  // One pass each (a seed file may be long): values seen more than once, in order of first repeat.
  const duplicates = (values: (string | undefined)[]): string[] => {
    const seen = new Set<string>();
    const repeated = new Set<string>();
    for (const v of values) if (v !== undefined) (seen.has(v) ? repeated : seen).add(v);
    return [...repeated];
  };
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

/**
 * Where a data file named by a stack setting may be read from: a file inside the project (symbolic links
 * resolved) with one of the expected extensions, so that a stack setting cannot make the program read, and
 * echo, any other file of the machine.
 */
export function projectFilePath(
  file: string,
  root: string,
  expected: { key: string; example: string; extensions: readonly string[] },
): { full?: string; problem?: string } {
  const fix = `use a path relative to the project, such as ${expected.example}`;
  if (path.isAbsolute(file)) return { problem: `is an absolute path; ${fix}` };
  if (!expected.extensions.includes(path.extname(file))) {
    return { problem: `must name a ${expected.extensions[0]} file; ${fix}` };
  }
  const realRoot = fs.realpathSync(root);
  let full: string;
  try {
    full = fs.realpathSync(path.resolve(root, file));
  } catch {
    return { problem: `there is no file ${file} in the project; check ${expected.key}` };
  }
  if (path.relative(realRoot, full).startsWith("..")) return { problem: `leads outside the project; ${fix}` };
  if (!fs.statSync(full).isFile()) return { problem: `is not a file; ${fix}` };
  return { full };
}

/**
 * A data file's text (the seed file's, a tenants file's): UTF-8 only (a Latin-1 file would otherwise be
 * stored with U+FFFD in place of its accents), within the size limit. Problems name the line, never its content.
 */
export function decodeText(
  bytes: Buffer,
  limit: number = SEED_LIMITS.bytes,
  what = "seed data",
): { text?: string; problem?: string } {
  if (bytes.length > limit) return { problem: `is ${bytes.length} bytes; the limit for ${what} is ${limit} bytes` };
  const strict = new TextDecoder("utf-8", { fatal: true });
  try {
    return { text: strict.decode(bytes) };
  } catch {
    let line = 1;
    for (let start = 0; start <= bytes.length; line++) {
      const end = bytes.indexOf(0x0a, start);
      const stop = end === -1 ? bytes.length : end;
      try {
        strict.decode(bytes.subarray(start, stop));
      } catch {
        break;
      }
      start = stop + 1;
    }
    return { problem: `line ${line} is not UTF-8 (saved as Latin-1 or Windows-1252?); save the file as UTF-8` };
  }
}

/** A YAML error by its position and kind; the text around it is the file's content, so it is not repeated. */
function yamlProblem(error: unknown): string {
  if (error instanceof YAMLError) {
    const at = error.linePos?.[0];
    return `is not valid YAML (${error.code}${at ? ` at line ${at.line}, column ${at.col}` : ""})`;
  }
  return "is not valid YAML";
}

/** Loads and validates a seed file, relative to the project root. */
export function loadSeeds(file: string, root = path.join(__dirname, "..")): PartnerSeeds {
  const where = projectFilePath(file, root, {
    key: "stage2:seedsFile",
    example: "data/partners.yaml",
    extensions: [".yaml", ".yml"],
  });
  if (!where.full) throw new SeedFileError(file, [`stage2:seedsFile ${where.problem}`]);
  const decoded = decodeText(fs.readFileSync(where.full));
  if (decoded.text === undefined) throw new SeedFileError(file, [decoded.problem!]);
  let data: unknown;
  try {
    data = parse(decoded.text, { maxAliasCount: 100 });
  } catch (error) {
    throw new SeedFileError(file, [yamlProblem(error)]);
  }
  return validateSeeds(data, file);
}
