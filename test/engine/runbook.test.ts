/**
 * docs/runbook.md, run as written: every ```sh block of it, in order, against a local Supabase-shaped database,
 * in a project folder and home of its own. Each block is labelled (`<!-- runbook-test: <label> -->`); this file
 * knows what each label needs beforehand (a policy dropped by hand, a killed up) and which exit code each of its
 * commands must give. A block without a label, or a label this file does not know, fails the test: a command
 * added to the runbook is a command this test runs.
 *
 * The blocks' commands run unchanged in one bash per block; between commands the harness only records `$?`, and
 * after the block the environment it left (the first hour exports the backend and the credentials, which the
 * later blocks use, as an operator's shell would). `STACK` names the test's stack; `up` without `--yes` asks
 * before it changes anything, which PULUMI_SKIP_CONFIRMATIONS answers here.
 */
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { projectCopy } from "../../cli/lib/pulumi";
import { descendantsOf } from "../../cli/lib/processes";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import { engine, REPO_ROOT, testReviewer } from "../support/engine";
import { waitFor } from "../support/wait";

interface Block {
  readonly label: string;
  readonly commands: string[];
}

/** The labelled ```sh blocks of a markdown file, in order; an unlabelled one is an error naming its line. */
export function runbookBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```sh") continue;
    const label = /^<!-- runbook-test: ([a-z-]+) -->$/.exec(lines[i - 1]?.trim() ?? "")?.[1];
    if (!label) throw new Error(`docs/runbook.md:${i + 1}: a command block without a runbook-test label`);
    const end = lines.indexOf("```", i + 1);
    blocks.push({ label, commands: commandsOf(lines.slice(i + 1, end)) });
    i = end;
  }
  return blocks;
}

/** One command per line (a trailing backslash continues it); blank and comment-only lines are not commands. */
function commandsOf(lines: string[]): string[] {
  const commands: string[] = [];
  let pending = "";
  for (const line of lines) {
    pending += line;
    if (pending.endsWith("\\")) {
      pending = `${pending.slice(0, -1)} `;
      continue;
    }
    if (pending.trim() && !pending.trim().startsWith("#")) commands.push(pending);
    pending = "";
  }
  return commands;
}

interface BlockRun {
  readonly codes: number[];
  readonly output: string;
  readonly env: Record<string, string>;
}

/** Runs a block's commands in one bash, as written; records each command's exit code and the environment after. */
function runBlock(block: Block, cwd: string, env: Record<string, string>, stdin = ""): Promise<BlockRun> {
  const envFile = path.join(os.tmpdir(), `runbook-env-${process.pid}-${block.label}`);
  const script = [
    "set +e",
    ...block.commands.flatMap((command, i) => [command, `printf '%d %d\\n' ${i} $? >&3`]),
    `env -0 > ${JSON.stringify(envFile)}`,
  ].join("\n");
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", script], { cwd, env, stdio: ["pipe", "pipe", "pipe", "pipe"] });
    let output = "";
    let codes = "";
    child.stdout!.on("data", (d: Buffer) => (output += d));
    child.stderr!.on("data", (d: Buffer) => (output += d));
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d: Buffer) => (codes += d));
    child.stdin!.end(stdin);
    child.on("close", () => {
      const after = fs.existsSync(envFile)
        ? Object.fromEntries(
            fs
              .readFileSync(envFile, "utf8")
              .split("\0")
              .filter((entry) => entry.includes("="))
              .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
          )
        : env;
      fs.rmSync(envFile, { force: true });
      resolve({
        codes: codes
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((line) => Number(line.split(" ")[1])),
        output,
        env: after,
      });
    });
  });
}

interface Scenario {
  /** What the operator's situation is before the block (a drift, a killed run). */
  readonly before?: () => Promise<void>;
  /** What the block reads from the terminal. */
  readonly stdin?: () => string;
  /** Each command's exit code; 0 for every command when not given. */
  readonly codes?: number[];
  /** What must hold afterwards. */
  readonly after?: (run: BlockRun) => Promise<void> | void;
}

describe("docs/runbook.md, every command as written", function () {
  const markdown = fs.readFileSync(path.join(REPO_ROOT, "docs", "runbook.md"), "utf8");
  const blocks = runbookBlocks(markdown);
  const stack = `runbook-${process.pid}`;
  const reviewer = testReviewer("runbook");
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-runbook-home-"));
  const project = projectCopy(path.join(home, "checkout"));
  let db: TestDatabase;
  let env: Record<string, string>;
  const sql = (text: string) => withClient(db.superuserUrl, (c) => c.query(text));
  const policyCount = async () =>
    Number((await sql("select count(*) as n from pg_policies where policyname = 'attachments_delete'")).rows[0].n);

  /** `scripts/stage2.sh up` killed with SIGKILL once it started creating: what "a killed up" leaves. */
  async function killedUp(): Promise<void> {
    await sql("drop policy attachments_delete on storage.objects; drop index public.projects_tenant_id_idx");
    const up = spawn(path.join(project, "scripts", "stage2.sh"), ["up", "--stack", stack, "--yes"], {
      cwd: project,
      env,
    });
    let seen = "";
    up.stdout.on("data", (d: Buffer) => (seen += d));
    const ended = new Promise((resolve) => up.on("close", resolve));
    await waitFor("the up to start creating", async () => / creating \(/.test(seen));
    const cli = descendantsOf(up.pid!).filter((pid) => {
      try {
        return path.basename(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]) === "pulumi";
      } catch {
        return false;
      }
    });
    assert.ok(cli.length > 0, "no pulumi process under scripts/stage2.sh");
    for (const pid of cli) process.kill(pid, "SIGKILL");
    await ended;
    const refused = await runBlock(
      { label: "refused", commands: [`scripts/stage2.sh up --stack ${stack} --yes`] },
      project,
      env,
    );
    assert.deepEqual(refused.codes, [4], refused.output);
    assert.ok(refused.output.includes(`\`npm run recover -- --stack ${stack}\``), refused.output);
  }

  const scenarios: Record<string, Scenario> = {
    "first-hour": {
      stdin: () => `${db.url}\nsbp_${"0".repeat(40)}\n${reviewer.password}\n`,
      after: (run) => {
        assert.match(run.output, /This up, database objects: \d+ created/);
        assert.match(run.output, /- all_ok: true/);
      },
    },
    "reviewer-url": {
      after: (run) => assert.equal(run.output.trim(), reviewer.urlFor(db)),
    },
    "reviewer-preview": {
      after: (run) => {
        assert.ok(run.output.includes(`role ${reviewer.config.name} is the stack's read-only reviewer`), run.output);
        assert.match(run.output, /no changes: the database matches the model/);
      },
    },
    report: { after: (run) => assert.match(run.output, /- all_ok: true/) },
    "approved-plan": {
      before: async () => void (await sql("drop policy attachments_delete on storage.objects")),
      codes: [7, 7, 0],
      after: async () => assert.equal(await policyCount(), 1),
    },
    drift: {
      before: async () => void (await sql("drop policy attachments_delete on storage.objects")),
      codes: [7],
      after: (run) => {
        // The plan the runbook shows is the plan this run printed.
        const shown = markdown.slice(markdown.indexOf("The plan at its end (from this test's run):"));
        const sample = shown.slice(shown.indexOf("```\n") + 4, shown.indexOf("\n```", shown.indexOf("```\n") + 4));
        for (const line of sample.split("\n")) assert.ok(run.output.includes(line), `not in the output: ${line}`);
      },
    },
    repair: {
      after: async (run) => {
        assert.match(run.output, /no changes: the database matches the model/);
        assert.equal(await policyCount(), 1);
      },
    },
    rollback: {
      after: async (run) => {
        assert.match(run.output, /Nothing was changed\. Run the same command with --yes to apply it\./);
        assert.match(run.output, /Recorded on stack \S+ \(stack tag stage2:rollback\)/);
        assert.match(run.output, /stage2:rollback:\n[^]*reason: 'uploads abused: delete disabled'/);
        assert.equal(await policyCount(), 0);
      },
    },
    "rollback-undo": { after: async () => assert.equal(await policyCount(), 1) },
    "export-sql": {
      after: () => {
        for (const file of ["omni-bootstrap.sql", "stage2-apply.sql", "stage2-verify.sql"]) {
          assert.ok(fs.existsSync(path.join(project, `sql-${stack}`, file)), file);
        }
      },
    },
    recover: {
      before: killedUp,
      after: async (run) => {
        assert.match(run.output, /This up, database objects:/);
        assert.equal(await policyCount(), 1);
      },
    },
  };

  before(async () => {
    db = await freshDatabase(`runbook-${process.pid}`);
    fs.writeFileSync(
      path.join(project, `Pulumi.${stack}.yaml`),
      [
        "config:",
        "  stage2:environment: local",
        "  stage2:projectRef: local",
        "  stage2:reviewer:",
        `    name: ${reviewer.config.name}`,
        "  stage2:features:",
        "    tenants: [TELCO]",
        "    flags: [ENABLE_PROJECTS, ENABLE_ATTACHMENTS_UPLOAD, ENABLE_OKTA_AUTH]",
        "",
      ].join("\n"),
    );
    const inherited = Object.entries(process.env).filter(
      ([key]) => !/^(PULUMI_|STAGE2_)/.test(key) && key !== "HOME",
    ) as [string, string][];
    env = {
      ...Object.fromEntries(inherited),
      HOME: home,
      STACK: stack,
      PULUMI_SKIP_CONFIRMATIONS: "true",
      // The engine scripts/engine.sh built (or finds) for this machine, not a build in the test's home.
      STAGE2_ENGINE_CACHE: path.dirname(path.dirname(engine())),
    };
  });
  after(async () => {
    await db?.drop().catch(() => undefined);
    await withClient(db.superuserUrl.replace(/\/[^/?]+(\?|$)/, "/postgres$1"), (c) =>
      c.query(`drop role if exists ${reviewer.config.name}`),
    ).catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("labels every command block with a scenario this test knows, and knows no other", () => {
    assert.deepEqual(blocks.map((b) => b.label).sort(), Object.keys(scenarios).sort());
  });

  for (const block of blocks) {
    it(`${block.label}: ${block.commands.length} command(s) as written`, async () => {
      const scenario = scenarios[block.label];
      await scenario.before?.();
      const run = await runBlock(block, project, env, scenario.stdin?.());
      const expected = scenario.codes ?? block.commands.map(() => 0);
      assert.deepEqual(run.codes, expected, `${block.label}:\n${run.output.slice(-6000)}`);
      await scenario.after?.(run);
      env = { ...run.env, STACK: stack };
    });
  }
});
