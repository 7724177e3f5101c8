/**
 * The stack's tenants: listed in the configuration (stage2:features.tenants), or, for long lists, in a text file
 * of the project, one id per line (stage2:features.tenantsFile). The engine hands a dynamic provider the whole
 * stack configuration and keeps it in the state, twice; a file keeps thousands of tenant ids out of every state
 * (docs/decisions.md, "Feature rows"), and a pull request that adds a tenant still shows it in the file's diff.
 */
import * as fs from "node:fs";
import { z } from "zod";
import { decodeText, projectFilePath } from "./seeds";

/** Mirrors the tables' CHECK (tenant_id ~ '^[A-Z][A-Z0-9_]{1,31}$'). */
export const TENANT_ID = /^[A-Z][A-Z0-9_]{1,31}$/;

/** About 100,000 of the longest tenant ids, one per line. */
const TENANTS_FILE_LIMIT_BYTES = 4 * 1024 * 1024;

const tenantId = z.string().regex(TENANT_ID, {
  message: "must be 2-32 characters of A-Z, 0-9 and _, starting with a letter (e.g. TELCO)",
});

export const tenantList = z
  .array(tenantId, { message: "must be a list of tenant ids (e.g. [TELCO])" })
  .min(1, { message: "list at least one tenant id (e.g. [TELCO])" })
  .superRefine((tenants, ctx) => {
    const seen = new Set<string>();
    const repeated = new Set<string>();
    for (const tenant of tenants) (seen.has(tenant) ? repeated : seen).add(tenant);
    for (const tenant of repeated) {
      ctx.addIssue({ code: "custom", message: `lists ${tenant} more than once; remove the duplicate` });
    }
  });

/** How many problems with a tenants file are listed; past that, how many more there are. */
const PROBLEMS_LISTED = 20;

/**
 * The tenants a file lists: one id per line; blank lines and `#` comments are ignored. A plain list rather than
 * YAML: parsing 10,000 entries as YAML took 60-170 ms, in the program and again in the provider, and a problem
 * is best named by its line.
 */
export function parseTenantsText(text: string): { tenants: string[]; problems: string[] } {
  const tenants: string[] = [];
  const problems: string[] = [];
  const firstLine = new Map<string, number>();
  text.split("\n").forEach((raw, i) => {
    const id = raw.replace(/#.*/, "").trim();
    if (!id) return;
    const line = i + 1;
    if (!TENANT_ID.test(id)) {
      problems.push(`line ${line}: must be 2-32 characters of A-Z, 0-9 and _, starting with a letter (e.g. TELCO)`);
    } else if (firstLine.has(id)) {
      problems.push(`line ${line}: lists ${id} again (first on line ${firstLine.get(id)}); remove the duplicate`);
    } else {
      firstLine.set(id, line);
      tenants.push(id);
    }
  });
  if (!tenants.length && !problems.length) problems.push("lists no tenant id; list one per line (e.g. TELCO)");
  const rest = problems.length - PROBLEMS_LISTED;
  return { tenants, problems: rest > 0 ? [...problems.slice(0, PROBLEMS_LISTED), `and ${rest} more`] : problems };
}

/**
 * The tenants a file names, or every problem with it, each naming the setting and the file; like the seed
 * file, it must be UTF-8 inside the project, and its content is never echoed.
 */
function readTenantsFile(file: string, root: string): { tenants: string[]; problems: string[] } {
  const key = "stage2:features.tenantsFile";
  const at = `${key} (${file})`;
  const where = projectFilePath(file, root, { key, example: "data/tenants.txt", extensions: [".txt"] });
  if (!where.full) return { tenants: [], problems: [`${key}: ${where.problem}`] };
  const decoded = decodeText(fs.readFileSync(where.full), TENANTS_FILE_LIMIT_BYTES, "a tenants file");
  if (decoded.text === undefined) return { tenants: [], problems: [`${at}: ${decoded.problem}`] };
  const { tenants, problems } = parseTenantsText(decoded.text);
  return { tenants, problems: problems.map((p) => `${at}: ${p}`) };
}

/** The features setting with its tenants resolved from the file it may name (root: the project). */
export function resolveTenants(
  features: { tenants?: string[]; tenantsFile?: string },
  root: string,
): { tenants: string[]; problems: string[] } {
  if (features.tenantsFile === undefined) return { tenants: features.tenants ?? [], problems: [] };
  return readTenantsFile(features.tenantsFile, root);
}
