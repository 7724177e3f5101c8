/**
 * The reviewer's password reaches the server only as a SCRAM-SHA-256 verifier (database/scram.ts). The
 * verifier computed here must be the one PostgreSQL computes itself from the same password, salt and
 * iteration count, and a role given it must log in with the password.
 */
import { strict as assert } from "node:assert";
import { scramVerifier } from "../../database/scram";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

describe("SCRAM verifier (database/scram.ts)", () => {
  let db: TestDatabase;
  const role = `stage2_scram_${process.pid}`;
  const password = "Correct-Horse-Battery-Staple-42!";

  before(async () => {
    db = await freshDatabase("scram");
  });
  after(async () => {
    await withClient(db.superuserUrl, (c) => c.query(`drop role if exists ${role}`));
    await db.drop();
  });

  it("equals the verifier PostgreSQL stores for the same password, salt and iterations", async () => {
    // Created by postgres, as the program creates the reviewer: from PostgreSQL 16 on, only the role that
    // created it (and so holds ADMIN OPTION on it) may change its password below. pg_authid is a superuser's read.
    await withClient(db.url, async (c) => {
      await c.query("set password_encryption = 'scram-sha-256'");
      await c.query(`create role ${role} login password '${password}'`);
    });
    const stored = await withClient(
      db.superuserUrl,
      async (c) =>
        (await c.query<{ v: string }>(`select rolpassword as v from pg_authid where rolname = '${role}'`)).rows[0].v,
    );
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
    assert.equal(scramVerifier(password, Buffer.from(salt, "base64"), Number(iterations)), stored);
  });

  it("logs in with the password when the role was given only the verifier", async () => {
    await withClient(db.url, (c) => c.query(`alter role ${role} password '${scramVerifier(password)}'`));
    const url = db.url.replace(/\/\/postgres:[^@]*@/, `//${role}:${encodeURIComponent(password)}@`);
    assert.deepEqual(await withClient(url, async (c) => (await c.query("select current_user as who")).rows), [
      { who: role },
    ]);
    const wrong = url.replace(encodeURIComponent(password), "wrong-password-0123456789");
    await assert.rejects(
      withClient(wrong, () => Promise.resolve()),
      { code: "28P01" },
    );
  });
});
