/**
 * The direct transport's failures as an operator reads them: a wrong password (what the first refresh after a
 * password change meets, since the engine refreshes with the configuration stored with the state) and a
 * closed port both name the SQLSTATE and the remedy, and never the password or the URL.
 */
import { strict as assert } from "node:assert";
import { DirectTransport } from "../../transports/direct";
import { freshDatabase, type TestDatabase } from "../support/database";

describe("direct transport errors", function () {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase("direct_transport");
  });
  after(async () => db?.drop());

  async function failureOf(url: string): Promise<string> {
    const transport = new DirectTransport(url);
    try {
      await transport.query("select 1");
    } catch (error) {
      return (error as Error).message;
    } finally {
      await transport.close();
    }
    assert.fail("the query must fail");
  }

  it("a wrong password names 28P01 and the remedy for a changed password, without the password", async () => {
    const url = new URL(db.url);
    url.password = "not-the-password-7f3a";
    const message = await failureOf(url.toString());
    assert.match(message, /password authentication failed/);
    assert.match(message, /SQLSTATE 28P01/);
    assert.match(message, /if it changed, put the new one in STAGE2_DATABASE_URL/);
    assert.ok(!message.includes("not-the-password-7f3a"), message);
    assert.ok(!message.includes(url.toString()), message);
  });

  it("a closed port names the address and what to check", async () => {
    const url = new URL(db.url);
    url.port = "1";
    const message = await failureOf(url.toString());
    assert.match(
      message,
      /^could not connect to 127\.0\.0\.1:1: .*ECONNREFUSED.* \(SQLSTATE 08006\) - nothing accepts connections at 127\.0\.0\.1:1: is the database running, and is STAGE2_DATABASE_URL its current address\?$/,
    );
    assert.ok(!message.includes(decodeURIComponent(new URL(db.url).password)), message);
  });

  it("verify-full connects over TLS with the project's CA, and names the fix without it", async () => {
    const host = db.url.replace("127.0.0.1", "localhost");
    const ca = encodeURIComponent(db.cluster.caFile);
    const verified = new DirectTransport(`${host}?sslmode=verify-full&sslrootcert=${ca}`);
    try {
      const [row] = await verified.query<{ ssl: boolean }>("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
      assert.equal(row.ssl, true);
    } finally {
      await verified.close();
    }
    const unverified = await failureOf(`${host}?sslmode=verify-full`);
    assert.match(unverified, /the server's certificate is not signed by a CA this machine trusts: add sslrootcert=/);
  });
});
