/**
 * The stack's tenants: listed in the configuration (stage2:features.tenants), or, for long lists, in a YAML file
 * of the project (stage2:features.tenantsFile). The engine hands a dynamic provider the whole stack
 * configuration and keeps it in the state, twice; a file keeps thousands of tenant ids out of every state
 * (README, Performance), and a pull request that adds a tenant still shows it in the file's diff.
 */
import * as fs from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { decodeSeedText, seedFilePath, yamlProblem } from "./seeds";

/** Mirrors the tables' CHECK (tenant_id ~ '^[A-Z][A-Z0-9_]{1,31}$'). */
export const TENANT_ID = /^[A-Z][A-Z0-9_]{1,31}$/;

/** 100,000 of the longest tenant ids, as a YAML list. */
export const TENANTS_FILE_LIMIT_BYTES = 4 * 1024 * 1024;

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

/**
 * The tenants a file lists (a YAML list of ids, e.g. `- TELCO`), or every problem with it, each naming the
 * setting, the file and the entry; like the seed file, it must be UTF-8 inside the project, and its content is
 * never echoed.
 */
export function readTenantsFile(file: string, root: string): { tenants?: string[]; problems?: string[] } {
  const key = "stage2:features.tenantsFile";
  const at = `${key} (${file})`;
  const where = seedFilePath(file, root, key, "data/tenants.yaml");
  if (!where.full) return { problems: [`${key}: ${where.problem}`] };
  const decoded = decodeSeedText(fs.readFileSync(where.full), TENANTS_FILE_LIMIT_BYTES);
  if (decoded.text === undefined) return { problems: [`${at}: ${decoded.problem}`] };
  let data: unknown;
  try {
    data = parse(decoded.text, { maxAliasCount: 100 });
  } catch (error) {
    return { problems: [`${at}: ${yamlProblem(error)}`] };
  }
  const result = tenantList.safeParse(data);
  if (result.success) return { tenants: result.data };
  return {
    problems: result.error.issues.map(
      (issue) => `${at}${issue.path.map((p) => `[${String(p)}]`).join("")}: ${issue.message}`,
    ),
  };
}

/** The features setting with its tenants resolved from the file it may name (root: the project). */
export function resolveTenants<F extends { tenants?: string[]; tenantsFile?: string }>(
  features: F,
  root: string,
): { tenants: string[]; problems: string[] } {
  if (features.tenantsFile === undefined) return { tenants: features.tenants ?? [], problems: [] };
  const listed = readTenantsFile(features.tenantsFile, root);
  return { tenants: listed.tenants ?? [], problems: listed.problems ?? [] };
}
