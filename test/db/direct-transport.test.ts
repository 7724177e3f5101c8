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
    assert.match(message, /run once with PULUMI_RUN_PROGRAM=true/);
    assert.ok(!message.includes("not-the-password-7f3a"), message);
    assert.ok(!message.includes(url.toString()), message);
  });

  it("a closed port says the database is unreachable", async () => {
    const url = new URL(db.url);
    url.port = "1";
    const message = await failureOf(url.toString());
    assert.match(message, /ECONNREFUSED|connect/i);
    assert.ok(!message.includes(decodeURIComponent(new URL(db.url).password)), message);
  });
});
