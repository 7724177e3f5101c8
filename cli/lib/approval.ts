/**
 * What an approved plan is bound to (report/approval.ts Provenance), measured for a stack as this checkout and
 * environment would run it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connectionOf } from "../../config/connection";
import { settingDigests, sha256, type Provenance } from "../../report/approval";
import { rawStackConfig, readStackConfig, type StackPlace } from "./stack-config";

/**
 * What is not the program: dependencies, the stacks' files, and hidden entries at the top (git's files, this
 * tool's scratch, a file backend's state such as .stage2/state, which every run rewrites).
 */
const NOT_PROGRAM = /^(node_modules|\..*)$|^Pulumi\.[^/]+\.yaml$/;
/**
 * The files at the project's top level that are the program. The rest of the top level is where a run leaves its
 * files (the approved plan, the preview's event log and engine plan, plan.md: preview.yml and up-prod.yml write
 * them there), and a file written between approval and up must not make the program "another program".
 */
const PROGRAM_AT_TOP = /\.(ts|js|mjs|cjs)$|^(Pulumi\.yaml|package\.json|package-lock\.json|tsconfig\.json)$/;

/**
 * A digest of the program's source: every file in the folders of the project the command runs in (links
 * followed) and its top-level program files, less what is not the program; stack files are left out (their
 * `stage2:` settings are bound on their own). Not the commit: a merge changes the commit, not the program;
 * uncommitted changes count.
 */
export function programDigest(root: string): string {
  const entries: string[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const relative = prefix ? `${prefix}/${name}` : name;
      if (NOT_PROGRAM.test(relative)) continue;
      const full = path.join(dir, name);
      const stat = fs.statSync(full);
      if (stat.isDirectory()) walk(full, relative);
      else if (stat.isFile() && (prefix || PROGRAM_AT_TOP.test(name)))
        entries.push(`${relative}\0${sha256(fs.readFileSync(full))}`);
    }
  };
  walk(root, "");
  return sha256(entries.join("\n"));
}

/** The stack's provenance: its program, its settings and the database its credentials reach. */
export async function provenanceOf(stack: string, place: StackPlace): Promise<Provenance> {
  const config = await readStackConfig(stack, place, "read");
  const connection = connectionOf(config);
  const target =
    connection.transport === "direct"
      ? `${connection.target.host}:${connection.target.port}/${connection.target.database}`
      : `Supabase Management API, project ${connection.projectRef}`;
  return {
    stack,
    program: programDigest(place.cwd),
    settings: settingDigests(await rawStackConfig(stack, place)),
    target,
  };
}
