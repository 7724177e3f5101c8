/**
 * Hostile and careless inputs (issue 13): fourteen ways an operator's input, or someone else's, could hurt
 * production. Each is tried through the real engine where the engine is what would have let it through, and
 * each must be refused before anything changes (a checksum of the database before and after: equal), or,
 * where the input is legitimate, converge correctly.
 *
 *   1  `pulumi destroy --skip-preview` on a prod stack          2  ?host= / ?user= moving the connection
 *   3  a URL without TLS to a remote host                       4  ddl.lockTimeout 0s (PostgreSQL: no limit)
 *   5  an out-of-range duration, and a fixed one after it        6  adopting a table whose column types differ
 *   7  control characters in an override's reason               8  a Latin-1 seed file
 *   9  a NUL in a label                                        10  a lone UTF-16 surrogate in a label
 *  11  a seed file past the size and row limits                12  a label swap and an id rename
 *  13  stage2:seedsFile reading other files and echoing them   14  managementApiUrl on another host
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { parseFlat, splitCredentials } from "../support/config";
import { loadSeeds } from "../../config/seeds";
import { databaseChecksum, freshDatabase, systemIdentifier, withClient } from "../support/database";
import { createTestStack, DEFAULT_CONFIG, projectScratch, type TestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { failureOf, output } from "../support/output";

const REF = "abcdefghijklmnopqrst";
const SEEDS = {
  partner_orgs: [
    { id: "vendor-x", label: "Vendor X", kind: "vendor" },
    { id: "dp-alpha", label: "DP Alpha", kind: "delivery_partner" },
  ],
  normalizations: [{ alias: "vendor x", partner_org: "vendor-x" }],
};

describe("hostile inputs: refused before any change, or converged correctly", function () {
  const held: string[] = [];
  const failed: string[] = [];
  let s: TestStack;
  let scratch: ReturnType<typeof projectScratch>;

  /** A case holds only if everything in `proof` does. */
  async function hostile(label: string, proof: () => Promise<void>): Promise<void> {
    try {
      await proof();
      held.push(label);
    } catch (error) {
      failed.push(label);
      throw error;
    }
  }

  /** Writes a seed file into the project's scratch folder; returns its project-relative path. */
  function seedFile(name: string, content: string | Buffer | object): string {
    const data = typeof content === "object" && !Buffer.isBuffer(content) ? stringify(content) : content;
    fs.writeFileSync(path.join(scratch.dir, name), data);
    return scratch.relative(name);
  }

  /**
   * Makes `values` the stack's settings and credentials (test/support/config.ts), over the defaults and the test
   * database's URL.
   */
  async function configure(values: Record<string, unknown>): Promise<void> {
    const { settings, credentials } = splitCredentials({ databaseUrl: s.db.url, ...values });
    await s.replaceConfig({ ...DEFAULT_CONFIG, ...settings });
    s.setCredentials({ accessToken: undefined, reviewerPassword: undefined, ...credentials });
  }

  /** Runs `pulumi <args>` with `config`, and proves the database is exactly as before. */
  async function refusedUntouched(args: string[], config: Record<string, unknown>, names: RegExp): Promise<string> {
    await configure(config);
    const before = await databaseChecksum(s.db.superuserUrl);
    const run = await s.cli(args);
    assert.notEqual(run.code, 0, `expected a refusal:\n${failureOf(run)}`);
    assert.match(output(run), names);
    assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the database changed");
    return output(run);
  }

  before(async () => {
    s = await createTestStack("hostile");
    scratch = projectScratch("hostile");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => {
    await discard(s);
    console.log(
      `hostile inputs: ${held.length}/14 refused before any change or converged correctly` +
        (failed.length ? `; FAILED: ${failed.join("; ")}` : ""),
    );
  });

  it("1. `destroy --skip-preview` on a prod stack deletes nothing; staging needs a logged reason", async () => {
    await hostile("prod destroy", async () => {
      const db = await freshDatabase(`${s.name}-prod`);
      const prod = await createTestStack("hostile-prod", {
        database: db,
        config: {
          environment: "prod",
          projectRef: undefined,
          target: { kind: "self-hosted", systemIdentifier: await systemIdentifier(db.url) },
          preflight: { backupCommand: "echo nightly backup verified by the test" },
        },
      });
      try {
        const up = await prod.cli(["up", "--yes", "--skip-preview"]);
        assert.equal(up.code, 0, failureOf(up));
        // The application has written a project (against a seeded partner).
        await withClient(db.superuserUrl, (c) =>
          c.query("insert into public.projects (tenant_id, name, partner_org_id) values ('TELCO', 'Live', 'vendor-x')"),
        );
        const before = await databaseChecksum(db.superuserUrl);
        const destroy = await prod.cli(["destroy", "--yes", "--skip-preview"]);
        assert.notEqual(destroy.code, 0, failureOf(destroy));
        assert.match(
          output(destroy),
          /this is a production stack \(stage2:environment prod\), which Stage 2 never tears down; nothing was deleted/,
        );
        assert.equal(await databaseChecksum(db.superuserUrl), before, "destroy --skip-preview changed the database");
        // With its preview, the engine stops at the protected tables before anything runs.
        const previewed = await prod.cli(["destroy", "--yes"]);
        assert.notEqual(previewed.code, 0);
        assert.equal(await databaseChecksum(db.superuserUrl), before, "destroy changed the database");

        // A staging stack (its tables unprotected by an up): refused without a reason, torn down with one.
        await prod.setConfig({ environment: "staging" });
        const unprotect = await prod.cli(["up", "--yes", "--skip-preview"]);
        assert.equal(unprotect.code, 0, failureOf(unprotect));
        const staged = await databaseChecksum(db.superuserUrl);
        const refused = await prod.cli(["destroy", "--yes", "--skip-preview"]);
        assert.notEqual(refused.code, 0);
        assert.match(output(refused), /To confirm, run it again with STAGE2_ALLOW_DESTROY="<reason>"/);
        assert.equal(
          await databaseChecksum(db.superuserUrl),
          staged,
          "the refused staging destroy changed the database",
        );
        const allowed = await prod.cli(["destroy", "--yes", "--skip-preview"], {
          env: { STAGE2_ALLOW_DESTROY: "rehearsal database retired (CHG-1234)" },
        });
        assert.equal(allowed.code, 0, failureOf(allowed));
        assert.match(
          output(allowed),
          /teardown preflight teardown: tearing down a staging stack \(because: rehearsal database retired \(CHG-1234\)\)/,
        );
        // What holds the application's data is kept, and the run says so.
        assert.match(
          output(allowed),
          /kept row public\.partner_org \(id="vendor-x"\): 1 row of public\.projects still reference it/,
        );
        assert.match(
          output(allowed),
          /kept table public\.projects: it holds 1 row and Stage 2 never drops a table with data/,
        );
      } finally {
        await discard(prod);
      }
    });
  });

  it("2. a query string that moves the connection (?host=, ?port=, ?user=) is refused, naming the key", async () => {
    await hostile("query overrides", async () => {
      const port = new URL(s.db.url).port;
      const moved = `postgresql://postgres:pw@db.${REF}.supabase.co:5432/postgres?sslmode=require&host=127.0.0.1&port=${port}`;
      await refusedUntouched(
        ["up", "--yes", "--skip-preview"],
        { environment: "staging", projectRef: REF, databaseUrl: moved },
        /STAGE2_DATABASE_URL: its query sets host, which would override what the URL says/,
      );
      const pooler = `postgresql://postgres.${REF}:pw@aws-0-eu-west-2.pooler.supabase.com:5432/postgres?sslmode=require&user=postgres.zyxwvutsrqponmlkjihg`;
      await refusedUntouched(
        ["preview"],
        { environment: "staging", projectRef: REF, databaseUrl: pooler },
        /STAGE2_DATABASE_URL: its query sets user/,
      );
    });
  });

  it("3. a connection to a remote host without TLS is refused; verify-full with the CA connects over TLS", async () => {
    await hostile("cleartext", async () => {
      await refusedUntouched(
        ["preview"],
        {
          environment: "staging",
          projectRef: REF,
          databaseUrl: `postgresql://postgres.${REF}:pw@aws-0-eu-west-2.pooler.supabase.com:5432/postgres`,
        },
        /STAGE2_DATABASE_URL: connects to aws-0-eu-west-2\.pooler\.supabase\.com without TLS \(no sslmode\), so the password would cross the network in the clear/,
      );
      const tls = `${s.db.url.replace("127.0.0.1", "localhost")}?sslmode=verify-full&sslrootcert=${encodeURIComponent(s.db.cluster.caFile)}`;
      await configure({ databaseUrl: tls });
      const preview = await s.cli(["preview", "--expect-no-changes"]);
      assert.equal(preview.code, 0, failureOf(preview));
      assert.match(output(preview), /preflight target: connected to project local \(host localhost, TLS verify-full\)/);
    });
  });

  it("4. ddl.lockTimeout 0s (no limit to PostgreSQL) is refused, naming the key", async () => {
    await hostile("lock timeout 0", async () => {
      await refusedUntouched(
        ["up", "--yes", "--skip-preview"],
        { ddl: { lockTimeout: "0s" } },
        /stage2:ddl\.lockTimeout: must not be 0: PostgreSQL reads 0 as "no limit"/,
      );
    });
  });

  it("5. an out-of-range duration is refused naming its key, and a corrected one works at once", async () => {
    await hostile("duration range", async () => {
      await refusedUntouched(
        ["preview"],
        { ddl: { lockTimeout: "99999999min" } },
        /stage2:ddl\.lockTimeout: is 99999999min; it must be a duration from 10ms to 10min/,
      );
      await configure({ ddl: { lockTimeout: "3s" } });
      const fixed = await s.cli(["preview", "--expect-no-changes"]);
      assert.equal(fixed.code, 0, failureOf(fixed));
    });
  });

  it("6. adopting a table whose column types differ is refused before anything is created", async () => {
    await hostile("adoption type change", async () => {
      const db = await freshDatabase(`${s.name}-types`);
      await withClient(db.url, (c) =>
        c.query(`create table public.projects (id text primary key, tenant_id text not null, name text not null);
                 insert into public.projects values ('p-1', 'TELCO', 'Kept as it is')`),
      );
      const other = await createTestStack("hostile-types", { database: db });
      try {
        const before = await databaseChecksum(db.superuserUrl);
        for (const args of [["preview"], ["up", "--yes", "--skip-preview"]]) {
          const run = await other.cli(args);
          assert.notEqual(run.code, 0, failureOf(run));
          assert.match(
            output(run),
            /schema: the live tables differ from the model in ways Stage 2 never changes by itself:\s+- table public\.projects: column id is text in the database and uuid in the model/,
          );
          assert.equal(await databaseChecksum(db.superuserUrl), before, `${args[0]} changed the database`);
        }
      } finally {
        await discard(other);
      }
    });
  });

  it("7. control characters in an override's reason never reach the output, the stack outputs or the state raw", async () => {
    await hostile("control characters", async () => {
      const closed = {
        timezone: "UTC",
        days: [["sun", "mon", "tue", "wed", "thu", "fri", "sat"][(new Date().getUTCDay() + 3) % 7]],
        start: "00:00",
        end: "23:59",
      };
      await configure({ preflight: { changeWindow: closed } });
      const reason = "INC-9\u001b[2K\u001b[1A\u001b[8m preflight change-window: inside the change window\u0007";
      const up = await s.cli(["up", "--yes", "--skip-preview"], { env: { STAGE2_OVERRIDE_CHANGE_WINDOW: reason } });
      assert.equal(up.code, 0, failureOf(up));
      assert.ok(!output(up).includes("\u001b"), "an escape sequence reached the CLI output");
      assert.match(
        output(up),
        /OVERRIDDEN \(INC-9\\x1b\[2K\\x1b\[1A\\x1b\[8m preflight change-window: inside the change window\\x07\)/,
      );
      const outputs = await s.stack.outputs();
      const preflight = outputs.preflight.value as { check: string; overridden_because: string | null }[];
      const window = preflight.find((p) => p.check === "change-window")!;
      assert.equal(
        window.overridden_because,
        "INC-9\\x1b[2K\\x1b[1A\\x1b[8m preflight change-window: inside the change window\\x07",
      );
      const state = JSON.stringify(await s.stack.exportStack());
      assert.ok(!state.includes("\\u001b") && !state.includes("\u001b"), "an escape character reached the state");
    });
  });

  it("8. a seed file in Latin-1 is refused naming the line, and nothing is written", async () => {
    await hostile("latin-1 seeds", async () => {
      const latin1 = Buffer.from(
        `partner_orgs:\n  - { id: dp-echo, label: "DP \xc9cho Caf\xe9", kind: delivery_partner }\n`,
        "latin1",
      );
      await refusedUntouched(
        ["up", "--yes", "--skip-preview"],
        { seedsFile: seedFile("latin1.yaml", latin1) },
        /line 2 is not UTF-8 \(saved as Latin-1 or Windows-1252\?\); save the file as UTF-8/,
      );
    });
  });

  it("9. a NUL character in a label is refused before anything is created", async () => {
    await hostile("NUL in a label", async () => {
      const file = seedFile("nul.yaml", 'partner_orgs:\n  - { id: vendor-x, label: "Vendor\\0X", kind: vendor }\n');
      await refusedUntouched(
        ["up", "--yes", "--skip-preview"],
        { seedsFile: file },
        /partner_orgs\[0\]\.label: holds a NUL character, which PostgreSQL text cannot store/,
      );
    });
  });

  it("10. a lone UTF-16 surrogate in a label is refused with a message, not a crash", async () => {
    await hostile("lone surrogate", async () => {
      const file = seedFile(
        "surrogate.yaml",
        'partner_orgs:\n  - { id: vendor-x, label: "Vendor \\uD800", kind: vendor }\n',
      );
      const said = await refusedUntouched(
        ["up", "--yes", "--skip-preview"],
        { seedsFile: file },
        /partner_orgs\[0\]\.label: holds a lone UTF-16 surrogate/,
      );
      assert.doesNotMatch(said, /invalid UTF-8|grpc|at .*\.ts:\d+/, "a crash, not a refusal");
    });
  });

  it("11. seed files past the size or row limit are refused at once, with the limit named", async () => {
    await hostile("seed limits", async () => {
      const big = seedFile(
        "big.yaml",
        `partner_orgs:\n${"  # padding\n".repeat(100_000)}  - { id: vendor-x, label: X, kind: vendor }\n`,
      );
      await refusedUntouched(["preview"], { seedsFile: big }, /is \d+ bytes; the limit for seed data is 1048576 bytes/);
      const rows = Array.from({ length: 1001 }, (_, i) => ({ id: `org-${i}`, label: `Org ${i}`, kind: "vendor" }));
      await refusedUntouched(
        ["preview"],
        { seedsFile: seedFile("rows.yaml", { partner_orgs: rows }) },
        /partner_orgs: lists more than 1000 rows, the limit for seed data/,
      );
    });
  });

  it("12. a label swap and an id rename are refused at preview with the way through", async () => {
    await hostile("label swap", async () => {
      await configure({ seedsFile: seedFile("seeds.yaml", SEEDS) });
      const up = await s.cli(["up", "--yes", "--skip-preview"]);
      assert.equal(up.code, 0, failureOf(up));
      const swapped = {
        ...SEEDS,
        partner_orgs: [
          { id: "vendor-x", label: "DP Alpha", kind: "vendor" },
          { id: "dp-alpha", label: "Vendor X", kind: "delivery_partner" },
        ],
      };
      await refusedUntouched(
        ["up", "--yes"],
        { seedsFile: seedFile("swap.yaml", swapped) },
        /seeds: public\.partner_org: label "DP Alpha" moves from \(id="dp-alpha"\) to \(id="vendor-x"\) in one run, which the unique key partner_org_label_key refuses half-way\. Do it in two runs/,
      );
      const renamed = {
        ...SEEDS,
        partner_orgs: [SEEDS.partner_orgs[0], { id: "dp-alpha-2", label: "DP Alpha", kind: "delivery_partner" }],
      };
      await refusedUntouched(
        ["preview"],
        { seedsFile: seedFile("rename.yaml", renamed) },
        /label "DP Alpha" of \(id="dp-alpha-2"\) is held by the row \(id="dp-alpha"\), which the seed file does not list/,
      );
    });
  });

  it("13. stage2:seedsFile cannot read outside the project, and a YAML error never echoes the file", async () => {
    await hostile("seeds file path", async () => {
      for (const file of ["../notes.env", "/proc/self/environ", "/etc/passwd.yaml"]) {
        const said = await refusedUntouched(
          ["preview"],
          { seedsFile: file },
          /stage2:seedsFile (is an absolute path|must name a \.yaml file|leads outside the project)/,
        );
        assert.doesNotMatch(said, /root:|PATH=/);
      }
      const secretish = seedFile(
        "broken.yaml",
        "partner_orgs:\n  - id: vendor-x\n PGPASSWORD: hunter2-not-a-real-one\n    label: [\n",
      );
      const said = await refusedUntouched(
        ["preview"],
        { seedsFile: secretish },
        /is not valid YAML \(\w+ at line \d+, column \d+\)/,
      );
      assert.ok(!said.includes("hunter2"), "the YAML error echoed the file's content");
    });
  });

  it("14. the access token goes to Supabase's API host only, unless another host is allowed by name", () => {
    return hostile("management API host", async () => {
      const config = {
        environment: "prod",
        projectRef: REF,
        databaseUrl: `postgresql://postgres:pw@db.${REF}.supabase.co/postgres?sslmode=verify-full`,
        accessToken: "sbp_0123456789abcdef0123456789abcdef01234567",
        features: { tenants: ["TELCO"] },
      };
      assert.throws(
        () => parseFlat({ ...config, managementApiUrl: "https://api.supabase.example.net" }),
        /stage2:managementApiUrl: api\.supabase\.example\.net is not Supabase's Management API/,
      );
      const allowed = parseFlat({
        ...config,
        managementApiUrl: "https://api.supabase.example.net",
        managementApiAllowHost: "api.supabase.example.net",
      });
      assert.equal(allowed.managementApiUrl, "https://api.supabase.example.net");
      // Through the engine, the backups line names the host it asked (test/engine/preflight.test.ts runs it
      // against a local API server); here a seed file proves the loader too is held to the project.
      assert.throws(() => loadSeeds("/etc/hostname", scratch.dir), /stage2:seedsFile is an absolute path/);
    });
  });
});
