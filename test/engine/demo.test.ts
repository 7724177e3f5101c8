/**
 * `npm run demo` works in a checkout whose own local stack is in use (issue 27, item 5): Pulumi.local.yaml holds a
 * secret under another passphrase (its encryptionsalt), the local stack has resources in .stage2/state, and the
 * operator's shell still exports that stack's passphrase and database URL. The demo runs for real, end to end,
 * and leaves the local stack and its stack file byte for byte as they were, and usable.
 *
 * The demo writes into the checkout it runs from (.stage2/demo), and a checkout of symlinks would not do: Node
 * resolves a module's symlinks to its real path, so the demo's REPO_ROOT would be this work tree again. So it
 * runs in a copy of this work tree as it is now (tracked and untracked files; node_modules linked), whose own
 * Pulumi.local.yaml and .stage2/state are the ones populated and compared. Its throwaway cluster lives under a
 * STAGE2_DB_ROOT of its own, removed afterwards. Takes a few minutes.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "../../cli/lib/pulumi";
import { freshDatabase, type TestDatabase } from "../support/database";
import { runShell, type ShellResult } from "../support/shell";
import { failureOf, output } from "../support/output";

/**
 * A copy of this work tree as it is now: what git lists (tracked, and untracked but not ignored, so uncommitted
 * changes are tested too), not .stage2 or .git; node_modules is a link, as `npm ci` would make it anew.
 */
function checkoutCopy(dir: string): void {
  const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  });
  for (const file of listed.split("\0").filter(Boolean)) {
    const from = path.join(REPO_ROOT, file);
    if (file === "node_modules" || !fs.existsSync(from)) continue; // deleted in the work tree, not yet committed
    const to = path.join(dir, file);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(from, to);
    fs.chmodSync(to, fs.statSync(from).mode); // scripts/*.sh must stay executable
  }
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"));
}

/** Every file under `root` (but `skip`, relative paths) and a digest of its bytes, sorted by path. */
function digests(root: string, skip: readonly string[] = []): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const relative = path.relative(root, full);
      if (skip.includes(relative)) continue;
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) found[relative] = createHash("sha256").update(fs.readFileSync(full)).digest("hex");
    }
  };
  walk(root);
  return Object.fromEntries(Object.entries(found).sort(([a], [b]) => a.localeCompare(b)));
}

describe("npm run demo in a checkout whose local stack is populated", function () {
  this.timeout(1_800_000);
  let scratch: string;
  let checkout: string;
  let db: TestDatabase;
  const passphrase = randomBytes(16).toString("hex");
  const note = randomBytes(12).toString("hex");

  /** The operator's shell in that checkout: the local stack's passphrase and URL exported, nothing else of ours. */
  const shell = (command: string, timeoutMs?: number): Promise<ShellResult> =>
    runShell(command, {
      cwd: checkout,
      timeoutMs,
      env: {
        PULUMI_CONFIG_PASSPHRASE: passphrase,
        STAGE2_DATABASE_URL: db.url,
        STAGE2_DB_ROOT: path.join(scratch, "clusters"),
        // The checkout's defaults (.stage2/state, .stage2/pulumi-home), not whatever runs these tests.
        PULUMI_BACKEND_URL: undefined,
        PULUMI_HOME: undefined,
        PULUMI_CONFIG_PASSPHRASE_FILE: undefined,
        STAGE2_ACCESS_TOKEN: undefined,
        STAGE2_REVIEWER_PASSWORD: undefined,
      },
    });

  before(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-demo-test-"));
    // The clusters' folder must be reachable by the postgres OS user that runs the server when we are root.
    fs.chmodSync(scratch, 0o755);
    checkout = path.join(scratch, "checkout");
    checkoutCopy(checkout);
    db = await freshDatabase(`demo-local-${process.pid}`);
    for (const command of [
      "scripts/stage2.sh stack init local --secrets-provider passphrase",
      `printf %s ${note} | scripts/stage2.sh config set --secret operator:note --stack local`,
      "scripts/stage2.sh up --yes --skip-preview --stack local",
    ]) {
      const result = await shell(command);
      assert.equal(result.code, 0, `${command}:\n${failureOf(result)}`);
    }
  });

  after(async () => {
    if (checkout && fs.existsSync(checkout)) {
      await shell("scripts/stage2.sh destroy --yes --skip-preview --stack local");
      // Only if the demo stopped half-way: it removes its own cluster when it finishes.
      await shell("npm run -s localdb -- destroy --name demo");
    }
    await db?.drop().catch(() => undefined);
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("runs end to end and leaves the local stack, its state and Pulumi.local.yaml byte for byte as they were", async () => {
    const stackFile = fs.readFileSync(path.join(checkout, "Pulumi.local.yaml"), "utf8");
    assert.match(stackFile, /^encryptionsalt: v1:/m, "the local stack should have its own passphrase's salt");
    assert.match(stackFile, /operator:note:\n\s+secure: v1:/, "the local stack should hold an encrypted secret");
    const state = () => digests(path.join(checkout, ".stage2", "state"));
    // The work tree outside .stage2 (Pulumi.local.yaml among it) and the local stack's state.
    const tree = () => digests(checkout, ["node_modules", ".stage2"]);
    const before = { state: state(), tree: tree() };
    assert.ok(
      Object.keys(before.state).some((file) => /stacks\/stage2\/local\.json$/.test(file)),
      `no checkpoint of the local stack in .stage2/state: ${Object.keys(before.state).join(", ")}`,
    );

    const demo = await shell("npm run demo", 1_200_000);
    assert.equal(demo.code, 0, failureOf(demo));
    assert.match(demo.stdout, /its own stack "demo" in \.stage2\/demo\/project/);
    // Issue 26: an approved plan, then a drift, and the approved up refuses naming the new line.
    assert.match(
      demo.stdout,
      /up --approved-plan: refused, nothing was changed:\n.*not in the approved plan: drift +grants on public\.projects: authenticated lacks SELECT/,
    );
    assert.match(demo.stdout, /\n\[10\/10\] Cleaning up: destroy the stack.*\n {6}done in \d+s\n$/);

    assert.deepEqual(state(), before.state, "the demo changed the local stack's state");
    assert.deepEqual(tree(), before.tree, "the demo changed a file of the checkout (Pulumi.local.yaml?)");
    assert.equal(fs.existsSync(path.join(checkout, ".stage2", "demo")), false, "the demo left its folder behind");

    // And the local stack still opens with its passphrase, and matches its database.
    const secret = await shell("scripts/stage2.sh config get operator:note --stack local");
    assert.equal(secret.stdout.trim(), note, output(secret));
    const preview = await shell("scripts/stage2.sh preview --expect-no-changes --stack local");
    assert.equal(preview.code, 0, failureOf(preview));
  });
});
