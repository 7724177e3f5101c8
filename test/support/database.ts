/**
 * Fresh Supabase-shaped databases for tests, cloned from the local cluster's template
 * (scripts/localdb.ts). Every test file gets its own database, so files never see each other's objects.
 */
import { Client } from "pg";
import { createDatabase, databaseUrl, dropDatabase, ensureCluster, type LocalCluster } from "../../scripts/localdb";

export const TEST_CLUSTER = process.env.STAGE2_TEST_CLUSTER ?? "test";

export interface TestDatabase {
  readonly name: string;
  readonly cluster: LocalCluster;
  /** As `postgres`, what the program uses. */
  readonly url: string;
  /** As the superuser, for test setup that the platform would do itself (auth users, storage objects). */
  readonly superuserUrl: string;
  drop(): Promise<void>;
}

export async function freshDatabase(name: string): Promise<TestDatabase> {
  const cluster = await ensureCluster(TEST_CLUSTER);
  const dbName = `t_${name.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}`.slice(0, 60);
  const url = await createDatabase(cluster, dbName);
  return {
    name: dbName,
    cluster,
    url,
    superuserUrl: databaseUrl(cluster, dbName, "superuser"),
    drop: () => dropDatabase(cluster, dbName),
  };
}

/** Runs `fn` with a connected client and always closes it. */
export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
