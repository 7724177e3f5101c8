/**
 * The read-only reviewer (model/reviewer.ts): the role pull-request previews and the drift check connect as.
 * It is created by the owner's `up`, previews clean, cannot write anything (PostgreSQL refuses every write it
 * is asked for, and a catalog and row checksum is unchanged), cannot run `up`, and its own drift (a privilege
 * granted to it by hand, LOGIN taken away, BYPASSRLS given, a large object it stored, a setting it gave itself, a
 * rotated password) shows in the preview and is taken away by up.
 * Drift of everything else, previewed as the reviewer, is test/engine/drift.test.ts.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { planOf } from "../../report/plan";
import { readEvents } from "../../cli/plan";
import { databaseChecksum, withClient } from "../support/database";
import { createTestStack, previewJobEnv, testReviewer, type CliResult, type TestStack } from "../support/engine";
import { runShell } from "../support/shell";
import { failureOf, output } from "../support/output";

/** The resources a `preview --json` plans to change, by name, with the inputs that differ. */
function planned(previewJson: string): Map<string, string[]> {
  type Step = {
    op: string;
    urn: string;
    oldState?: { inputs?: Record<string, unknown> };
    newState?: { inputs?: Record<string, unknown> };
  };
  const steps = (JSON.parse(previewJson) as { steps?: Step[] }).steps ?? [];
  return new Map(
    steps
      .filter((step) => !["same", "read", "refresh"].includes(step.op))
      .map((step) => {
        const olds = step.oldState?.inputs ?? {};
        const news = step.newState?.inputs ?? {};
        const fields = Object.keys(news).filter(
          (k) => k !== "__provider" && JSON.stringify(olds[k]) !== JSON.stringify(news[k]),
        );
        return [step.urn.split("::").pop()!, fields];
      }),
  );
}

describe("the read-only reviewer role", function () {
  this.timeout(900_000);
  let s: TestStack;
  const reviewer = testReviewer("review");
  const role = reviewer.config.name;
  const superuser = <R>(text: string): Promise<R[]> =>
    withClient(s.db.superuserUrl, async (c) => (await c.query(text)).rows as R[]);

  /** Runs `pulumi <args>` as a pull request's preview job does: the reviewer's URL and no other credential. */
  const asReviewer = (args: string[]): Promise<CliResult> => s.cli(args, { env: previewJobEnv(reviewer, s.db) });

  async function expectPlanned(result: CliResult, name: string, field: string): Promise<void> {
    assert.equal(result.code, 7, `drift must fail the preview with exit 7:\n${failureOf(result)}`);
    const steps = planned(result.stdout);
    assert.ok(steps.get(name)?.includes(field), `${name}.${field} is not planned: ${JSON.stringify([...steps])}`);
  }

  before(async () => {
    s = await createTestStack("reviewer", { config: { reviewer: reviewer.config }, credentials: reviewer.credentials });
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => s?.destroyAndRemove());

  it("is created with LOGIN and no other power, previews clean, and cannot run up", async () => {
    assert.deepEqual(
      await superuser(`select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,
                         (select count(*)::int from pg_auth_members m where m.member = r.oid) as memberships
                       from pg_roles r where rolname = '${role}'`),
      [
        {
          rolcanlogin: true,
          rolsuper: false,
          rolcreatedb: false,
          rolcreaterole: false,
          rolreplication: false,
          rolbypassrls: false,
          memberships: 0,
        },
      ],
    );
    const preview = await asReviewer(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 0, failureOf(preview));
    assert.match(output(preview), new RegExp(`role ${role} is the stack's read-only reviewer`));

    const before = await databaseChecksum(s.db.superuserUrl);
    const up = await asReviewer(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0);
    assert.match(
      output(up),
      new RegExp(
        `STAGE2_DATABASE_URL connects as ${role}, the stack's read-only reviewer role: .* Run \`up\` with the owner's URL`,
      ),
    );
    assert.doesNotMatch(
      output(up),
      /stage2:\w+ .*\b(creating|updating|deleting)\b/,
      "the refused up touched a resource",
    );
    assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the refused up changed the database");
  });

  it("an operator previews as the reviewer with the documented commands: npm run -s reviewer-url, then scripts/stage2.sh (issue 27)", async () => {
    // The owner's environment (STAGE2_DATABASE_URL as postgres, STAGE2_REVIEWER_PASSWORD), in the stack's project
    // folder, as an operator's shell in the checkout has them.
    const shell = (command: string, env: Record<string, string> = {}) =>
      runShell(command.replaceAll("<stack>", s.name), { cwd: s.workDir, env: { ...s.env, ...env } });

    const printed = await shell("npm run -s reviewer-url -- --stack <stack>");
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stderr, "");
    const lines = printed.stdout.split("\n");
    assert.deepEqual(lines.slice(1), [""], "stdout must hold the URL alone, for $(...)");
    const url = new URL(lines[0]);
    const owner = new URL(s.db.url);
    assert.deepEqual(
      [url.protocol, url.hostname, url.port, url.pathname, url.search, url.username],
      [owner.protocol, owner.hostname, owner.port, owner.pathname, owner.search, role],
    );
    assert.equal(decodeURIComponent(url.password), reviewer.password);
    assert.deepEqual(await withClient(lines[0], async (c) => (await c.query("select current_user as who")).rows), [
      { who: role },
    ]);

    const preview = await shell(
      'STAGE2_DATABASE_URL="$(npm run -s reviewer-url -- --stack <stack>)" scripts/stage2.sh preview --stack <stack>',
    );
    assert.equal(preview.code, 0, failureOf(preview));
    assert.match(preview.stdout, new RegExp(`preflight permissions: role ${role} is the stack's read-only reviewer`));
    assert.match(preview.stdout, /Plan \(npm run plan\).*\nno changes: the database matches the model\n$/);

    const before = await databaseChecksum(s.db.superuserUrl);
    const up = await shell(
      'STAGE2_DATABASE_URL="$(npm run -s reviewer-url -- --stack <stack>)" scripts/stage2.sh up --yes --skip-preview --stack <stack>',
    );
    // Refused by the stack guard before the engine starts: one line, not a preview's output around it.
    assert.equal(up.code, 6, output(up));
    assert.equal(up.stdout, "");
    assert.deepEqual(up.stderr.trim().split("\n"), [
      `stack guard: STAGE2_DATABASE_URL connects as ${role}, stack ${s.name}'s read-only reviewer: it previews and ` +
        "cannot change the database. Run up with the owner's URL (postgres); nothing was run.",
    ]);
    assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the reviewer's up changed the database");

    // Without the reviewer's password: nothing on stdout (so $(...) is empty), the variable and the fix on stderr.
    const refused = await shell("npm run -s reviewer-url -- --stack <stack>", { STAGE2_REVIEWER_PASSWORD: "" });
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, "");
    assert.match(refused.stderr, /STAGE2_REVIEWER_PASSWORD: is not set\. .*read -rs STAGE2_REVIEWER_PASSWORD/);
    assert.ok(!refused.stderr.includes(reviewer.password));
  });

  it("cannot write: PostgreSQL refuses every write asked as the reviewer, and nothing changes", async () => {
    const writes = [
      "create table public.reviewer_was_here (id int)",
      "insert into public.features (tenant_id, name, enabled) values ('TELCO', 'ENABLE_REVIEWER', true)",
      "update public.features set enabled = true",
      "delete from public.partner_org",
      "truncate public.partner_normalization",
      "update storage.buckets set public = true where id = 'attachments'",
      "drop policy attachments_read on storage.objects",
      "create policy reviewer_all on public.projects for all using (true)",
      "alter table public.projects disable row level security",
      "drop table public.projects",
      "create index on public.projects (name)",
      "grant select on public.projects to anon",
      "create role reviewer_made_this login",
      `alter role ${role} createrole`,
      `alter role ${role} bypassrls`,
      "grant postgres to " + role,
      "create schema reviewer_was_here",
      "create or replace function private.using_rls_for_project(p_project_id uuid) returns boolean language sql as 'select true'",
      "select set_config('request.jwt.claims', '{}', false); delete from public.projects",
    ];
    const before = await databaseChecksum(s.db.superuserUrl);
    const client = new Client({ connectionString: reviewer.urlFor(s.db) });
    await client.connect();
    const refusals: string[] = [];
    try {
      for (const write of writes) {
        try {
          await client.query(write);
        } catch (error) {
          const e = error as { code?: string; message: string };
          // 42501 permission denied / must be owner / must have CREATEROLE; 0LP01 invalid grant operation.
          if (e.code === "42501" || e.code === "0LP01") refusals.push(`${write.slice(0, 40)}: ${e.code}`);
          else assert.fail(`${write}: refused with ${e.code} (${e.message}), not for want of a privilege`);
          continue;
        }
        assert.fail(`${write}: the reviewer was allowed to run it`);
      }
    } finally {
      await client.end();
    }
    const changed = (await databaseChecksum(s.db.superuserUrl)) === before ? 0 : 1;
    console.log(`      writes attempted ${writes.length}, refused ${refusals.length}, changed ${changed}`);
    assert.equal(refusals.length, writes.length);
    assert.equal(changed, 0, "the database changed although every write was refused");
  });

  it("shows its own drift: a privilege granted by hand, LOGIN taken away, BYPASSRLS given", async () => {
    await superuser(`grant insert on public.features to ${role}`);
    await expectPlanned(
      await asReviewer(["preview", "--expect-no-changes", "--json"]),
      "public.features/grants",
      "privileges",
    );
    assert.equal((await s.cli(["up", "--yes", "--skip-preview"])).code, 0);
    assert.deepEqual(await superuser(`select has_table_privilege('${role}', 'public.features', 'INSERT') as may`), [
      { may: false },
    ]);

    await superuser(`alter role ${role} nologin`);
    // It cannot log in now: the owner previews.
    await expectPlanned(await s.cli(["preview", "--expect-no-changes", "--json"]), role, "login");
    assert.equal((await s.cli(["up", "--yes", "--skip-preview"])).code, 0);
    assert.deepEqual(await superuser(`select rolcanlogin from pg_roles where rolname = '${role}'`), [
      { rolcanlogin: true },
    ]);

    await superuser(`alter role ${role} bypassrls`);
    await expectPlanned(await asReviewer(["preview", "--expect-no-changes", "--json"]), role, "bypassRls");
    const [{ version }] = await superuser<{ version: number }>(
      "select current_setting('server_version_num')::int as version",
    );
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    if (version >= 160000) {
      // A CREATEROLE role that holds BYPASSRLS and administers the role may take it away.
      assert.equal(up.code, 0, failureOf(up));
    } else {
      assert.notEqual(up.code, 0);
      assert.match(
        output(up),
        new RegExp(
          `role ${role} holds a power the owner role may not take away .*Have a superuser run ALTER ROLE ${role}`,
        ),
      );
      // As the hint says; the failed up left its outputs "not current", which the next up replaces.
      await superuser(`alter role ${role} nobypassrls`);
      assert.equal((await s.cli(["up", "--yes", "--skip-preview"])).code, 0);
    }
    assert.deepEqual(await superuser(`select rolbypassrls from pg_roles where rolname = '${role}'`), [
      { rolbypassrls: false },
    ]);
    const clean = await asReviewer(["preview", "--expect-no-changes", "--diff"]);
    assert.equal(clean.code, 0, failureOf(clean));
  });

  it("what it stores or sets itself is drift: a large object and its own settings are named, and up takes them away", async () => {
    await withClient(reviewer.urlFor(s.db), async (c) => {
      await c.query("select lo_from_bytea(0, convert_to(repeat('x', 1048576), 'UTF8'))");
      await c.query("alter role current_user set statement_timeout = 0");
    });
    const preview = await asReviewer(["preview", "--expect-no-changes", "--json"]);
    await expectPlanned(preview, role, "holds");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.deepEqual(
      await superuser(`select (select count(*)::int from pg_largeobject_metadata where lomowner = '${role}'::regrole) as objects,
                              (select rolconfig from pg_roles where rolname = '${role}') as settings`),
      [{ objects: 0, settings: null }],
    );
    const clean = await asReviewer(["preview", "--expect-no-changes"]);
    assert.equal(clean.code, 0, failureOf(clean));
  });

  it("takes a rotated password from STAGE2_REVIEWER_PASSWORD: the preview names it, up sets it, the old one stops working", async () => {
    const rotated = randomBytes(24).toString("hex");
    s.setCredentials({ reviewerPassword: rotated });
    try {
      await expectPlanned(await s.cli(["preview", "--expect-no-changes", "--json"]), role, "password");
      const events = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stage2-reviewer-")), "events.jsonl");
      await s.cli(["preview", "--event-log", events], { env: { PULUMI_DEBUG_COMMANDS: "true" } });
      assert.deepEqual(
        planOf(readEvents(events)).lines.map((l) => `${l.subject}: ${l.what} -> up ${l.up}`),
        [
          `role ${role}: a login with STAGE2_REVIEWER_PASSWORD fails (the secret was rotated, or the password ` +
            "changed in the database) -> up sets that password (as a SCRAM verifier)",
        ],
      );
      const up = await s.cli(["up", "--yes", "--skip-preview"]);
      assert.equal(up.code, 0, failureOf(up));
      const login = (password: string) =>
        withClient(reviewer.urlFor(s.db, password), () => Promise.resolve(true)).catch(
          (error: { code?: string }) => error.code,
        );
      assert.equal(await login(rotated), true);
      assert.equal(await login(reviewer.password), "28P01");
    } finally {
      s.setCredentials(reviewer.credentials);
      assert.equal((await s.cli(["up", "--yes", "--skip-preview"])).code, 0);
    }
  });
});
