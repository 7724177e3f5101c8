/**
 * A faulty variant of the program for one test stack, without test-only switches in production code.
 *
 * The stack's project folder (test/support/engine.ts projectCopy) is made of symlinks to the repository.
 * Node resolves a symlinked module to its real path, so any module reached through a symlink (the entry
 * point named by Pulumi.yaml, index.ts, ...) would still import the repository's own model. The variant
 * therefore turns that folder into a real copy of the project (node_modules stays a symlink: it is only
 * read), patches one file of the copy, and can put the repository's version of that file back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./engine";

/** Entries that stay symlinks: dependencies, and what the program never loads. */
const SHARED = new Set(["node_modules", "test", "results"]);

function materialize(workDir: string): void {
  for (const entry of fs.readdirSync(workDir)) {
    const target = path.join(workDir, entry);
    if (SHARED.has(entry) || !fs.lstatSync(target).isSymbolicLink()) continue;
    const source = fs.realpathSync(target);
    fs.rmSync(target, { force: true });
    fs.cpSync(source, target, { recursive: true, dereference: true });
  }
}

/** Makes the folder a real copy of the project and applies `patch` to `file`; throws if it changes nothing. */
export function patchProgram(workDir: string, file: string, patch: (source: string) => string): void {
  materialize(workDir);
  const full = path.join(workDir, file);
  const source = fs.readFileSync(full, "utf8");
  const patched = patch(source);
  if (patched === source) throw new Error(`the patch of ${file} changed nothing; has the program moved on?`);
  fs.writeFileSync(full, patched);
}

/** Puts the repository's version of `file` back: the folder runs the repository's program again. */
export function restoreFile(workDir: string, file: string): void {
  fs.copyFileSync(path.join(REPO_ROOT, file), path.join(workDir, file));
}
