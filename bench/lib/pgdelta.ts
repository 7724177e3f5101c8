/**
 * pg-delta (@supabase/pg-delta, a devDependency pinned exactly: its `latest` tag is an empty 0.0.0 placeholder),
 * the fastest peer the benchmark compares the preview with: `pgdelta snapshot` of a database once, then
 * `pgdelta drift` of the same database against that snapshot, each a new process as an operator runs it. It
 * is a schema-only peer: it compares catalog objects, never rows.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../cli/lib/pulumi";

/** The platform profile: Supabase's own objects are not the project's. */
export const PGDELTA_PROFILE = "supabase";

const PACKAGE = path.join(REPO_ROOT, "node_modules", "@supabase", "pg-delta");

/** The installed version, or why there is none (the exact error). */
export function pgDeltaVersion(): { version: string } | { error: string } {
  try {
    return {
      version: (JSON.parse(fs.readFileSync(path.join(PACKAGE, "package.json"), "utf8")) as { version: string }).version,
    };
  } catch (error) {
    return { error: `@supabase/pg-delta is not installed (npm ci): ${(error as Error).message}` };
  }
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function pgdelta(args: readonly string[]): Promise<Run> {
  const cli = path.join(PACKAGE, "dist", "cli", "main.js");
  const started = performance.now();
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [cli, ...args],
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, cwd: REPO_ROOT },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - started });
      },
    ),
  );
}

/** The line that says what the run found, or the first error line. */
function verdictOf(run: Run): string {
  const text = `${run.stdout}\n${run.stderr}`;
  return (
    /^(No drift detected\.|Drift detected: .*)$/m.exec(text)?.[1] ??
    text
      .split("\n")
      .find((l) => /error|Error/.test(l))
      ?.trim() ??
    `exit ${run.code}`
  );
}

/** `pgdelta snapshot`: the catalog facts it saved, and how long it took. */
export async function pgDeltaSnapshot(url: string, file: string): Promise<{ ms: number; facts: number | null }> {
  const run = await pgdelta(["snapshot", "--profile", PGDELTA_PROFILE, "--source", url, "--out", file]);
  if (run.code !== 0 || !fs.existsSync(file)) {
    throw new Error(`pgdelta snapshot failed (exit ${run.code}): ${verdictOf(run)}`);
  }
  const facts = /\((\d+) facts/.exec(`${run.stdout}\n${run.stderr}`)?.[1];
  return { ms: run.ms, facts: facts ? Number(facts) : null };
}

/** `pgdelta drift` against a snapshot: exit 0 without drift, 1 with it; anything else failed. */
export async function pgDeltaDrift(
  url: string,
  snapshot: string,
): Promise<{ ms: number; drift: boolean; verdict: string }> {
  const run = await pgdelta(["drift", "--profile", PGDELTA_PROFILE, "--env", url, "--snapshot", snapshot]);
  const verdict = verdictOf(run);
  const drift = run.code === 1 && verdict.startsWith("Drift detected");
  if (run.code !== 0 && !drift) throw new Error(`pgdelta drift failed (exit ${run.code}): ${verdict}`);
  return { ms: run.ms, drift, verdict };
}
