/**
 * A throwaway PostgreSQL cluster (Debian's 15, or the server binaries PG_BIN names) on a free loopback port, made to look like a hosted Supabase database
 * (sql/platform/supabase-platform.sql), for tests, the demo and the benchmark. Never used against a real project.
 *
 *   npm run localdb -- start [--name local] [--db stage2] [--fresh]
 *                              start (or reuse) a cluster, on the port it had before if that is free, and create
 *                              the database if it is missing (--fresh: drop and re-create it); prints the URL
 *   npm run -s localdb -- url [--name local] [--db stage2]
 *                              the URL of a database `start` made (the cluster is started if it was stopped)
 *   npm run localdb -- stop [--name local]
 *   npm run localdb -- destroy [--name local ...]
 *
 * Both print the URL alone on stdout (for `export STAGE2_DATABASE_URL="$(npm run -s localdb -- url)"`) and which
 * cluster and database it names on stderr. Without --db both mean the same database, stage2, the local stack's.
 *
 * Databases are cloned from a template that holds the platform fixture, so a fresh Supabase-shaped database
 * costs one CREATE DATABASE. PostgreSQL refuses to run as root: when run as root, the cluster runs as the
 * unprivileged `postgres` OS user (Debian's package creates it).
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { ident, literal } from "../database/sql";

export const TEMPLATE_DATABASE = "supabase_template";
const FIXTURE = path.join(__dirname, "..", "sql", "platform", "supabase-platform.sql");
const RUN_AS = "postgres";

export interface LocalCluster {
  readonly name: string;
  readonly dir: string;
  readonly port: number;
  readonly host: string;
  readonly superuser: string;
  readonly superuserPassword: string;
  readonly postgresPassword: string;
  /** The CA that signed the server's certificate (CN localhost, and 127.0.0.1): for sslmode=verify-full. */
  readonly caFile: string;
}

interface ClusterFile {
  port: number;
  superuserPassword: string;
  postgresPassword: string;
}

/** Connection URL for a database of the cluster, as `postgres` (what the program uses) or as the superuser. */
export function databaseUrl(
  cluster: LocalCluster,
  database: string,
  as: "postgres" | "superuser" = "postgres",
): string {
  const [user, password] =
    as === "postgres" ? ["postgres", cluster.postgresPassword] : [cluster.superuser, cluster.superuserPassword];
  return `postgresql://${user}:${encodeURIComponent(password)}@${cluster.host}:${cluster.port}/${database}`;
}

/**
 * One folder of clusters per user, checkout and server major version: two checkouts on one machine (a CI dry
 * run beside a work tree) must not share databases, since a test recreates its database by name, ending
 * other sessions; and a data folder only opens with the major version that made it (PG_BIN can switch it).
 */
function clusterRoot(): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const checkout = createHash("sha256").update(path.resolve(__dirname, "..")).digest("hex").slice(0, 8);
  return process.env.STAGE2_DB_ROOT ?? path.join(os.tmpdir(), `stage2-db-${uid}-${checkout}-pg${serverMajor()}`);
}

let major: string | undefined;

/** The major version of the server binaries in use ("15", "17"). */
export function serverMajor(): string {
  major ??= /(\d+)\.\d+/.exec(pgTool("postgres", ["--version"]))?.[1] ?? "unknown";
  return major;
}

function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

function postgresBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const base = "/usr/lib/postgresql";
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => /^\d+$/.test(v)) : [];
  const preferred = versions.includes("15") ? "15" : versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!preferred || !fs.existsSync(path.join(base, preferred, "bin", "initdb"))) {
    throw new Error(
      "PostgreSQL server binaries not found under /usr/lib/postgresql/<version>/bin. " +
        "Install Debian's postgresql-15 (apt-get install -y postgresql-15) or set PG_BIN to the folder holding initdb.",
    );
  }
  return path.join(base, preferred, "bin");
}

/** Runs a PostgreSQL server binary, as the unprivileged OS user when we are root. */
function pgTool(tool: string, args: string[], options: { allowFailure?: boolean } = {}): string {
  const bin = path.join(postgresBin(), tool);
  const [file, argv] = isRoot() ? ["runuser", ["-u", RUN_AS, "--", bin, ...args]] : [bin, args];
  try {
    return execFileSync(file, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    if (options.allowFailure) return "";
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${tool} ${args.join(" ")} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function handOver(target: string): void {
  if (isRoot()) execFileSync("chown", ["-R", `${RUN_AS}:`, target]);
}

function isRunning(dataDir: string): boolean {
  if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) return false;
  const bin = path.join(postgresBin(), "pg_ctl");
  const [file, argv] = isRoot()
    ? ["runuser", ["-u", RUN_AS, "--", bin, "-D", dataDir, "status"]]
    : [bin, ["-D", dataDir, "status"]];
  try {
    execFileSync(file, argv, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function initialise(dir: string, dataDir: string, file: ClusterFile): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const pwfile = path.join(dir, "superuser.pw");
  fs.writeFileSync(pwfile, file.superuserPassword + "\n", { mode: 0o600 });
  handOver(dir);
  pgTool("initdb", [
    "-D",
    dataDir,
    "-U",
    "supabase_admin",
    "--pwfile",
    pwfile,
    "--auth-host=scram-sha-256",
    "--auth-local=trust",
    "--encoding=UTF8",
    "--locale=C.UTF-8",
    "--no-instructions",
  ]);
  fs.rmSync(pwfile);
  const settings = [
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    // Throwaway cluster: durability traded for speed.
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "max_connections = 300",
    "lc_messages = 'C'",
    "log_min_messages = warning",
    // What supautils reads on the platform; the preflight reads it back (see sql/platform/supabase-platform.sql).
    `supautils.policy_grants = '{"postgres": ["storage.buckets", "storage.objects"]}'`,
  ];
  fs.appendFileSync(path.join(dataDir, "postgresql.conf"), "\n# stage2 local test bed\n" + settings.join("\n") + "\n");
}

/**
 * TLS as on the platform, so the tests can prove what the program does with sslmode: a throwaway CA signs a
 * certificate for localhost and 127.0.0.1. Clients may still connect without TLS (the test bed is loopback).
 */
function enableTls(dir: string, dataDir: string): void {
  const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "3650",
    "-subj",
    "/CN=stage2 test CA",
  ]);
  openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  fs.writeFileSync(path.join(dir, "san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"].concat([
      "-out",
      "server.crt",
      "-days",
      "3650",
      "-extfile",
      "san.ext",
    ]),
  );
  for (const file of ["server.crt", "server.key"]) fs.renameSync(path.join(dir, file), path.join(dataDir, file));
  fs.chmodSync(path.join(dataDir, "server.key"), 0o600);
  fs.chmodSync(path.join(dir, "ca.crt"), 0o644);
  fs.appendFileSync(path.join(dataDir, "postgresql.conf"), "ssl = on\n");
  handOver(dir);
}

function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir + ".lock");
  const deadline = Date.now() + 120_000;
  const acquire = async (): Promise<void> => {
    for (;;) {
      try {
        fs.mkdirSync(lock);
        return;
      } catch {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${lock}; remove it if no other run is active`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  return acquire().then(() => fn().finally(() => fs.rmSync(lock, { recursive: true, force: true })));
}

/** Starts the named cluster (creating it on first use) and makes sure its Supabase template is current. */
export async function ensureCluster(name = "local"): Promise<LocalCluster> {
  const root = clusterRoot();
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  const dir = path.join(root, name);
  return withLock(dir, async () => {
    const dataDir = path.join(dir, "data");
    const metaPath = path.join(root, `${name}.json`);
    let file: ClusterFile | undefined = fs.existsSync(metaPath)
      ? JSON.parse(fs.readFileSync(metaPath, "utf8"))
      : undefined;
    if (!file || !fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
      fs.rmSync(dir, { recursive: true, force: true });
      file = {
        port: 0,
        superuserPassword: randomBytes(18).toString("base64url"),
        postgresPassword: randomBytes(18).toString("base64url"),
      };
      initialise(dir, dataDir, file);
    }
    if (!fs.existsSync(path.join(dataDir, "server.crt"))) {
      if (isRunning(dataDir)) pgTool("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"]);
      enableTls(dir, dataDir);
    }
    if (!isRunning(dataDir)) {
      // The same port as before if it is still free, so a URL printed earlier keeps working after a restart.
      if (!file.port || !(await portIsFree(file.port))) file.port = await freePort();
      pgTool("pg_ctl", [
        "-D",
        dataDir,
        "-l",
        path.join(dir, "server.log"),
        "-w",
        "-t",
        "60",
        "-o",
        `-p ${file.port}`,
        "start",
      ]);
    }
    fs.writeFileSync(metaPath, JSON.stringify(file, null, 2), { mode: 0o600 });
    const cluster: LocalCluster = {
      name,
      dir,
      port: file.port,
      host: "127.0.0.1",
      superuser: "supabase_admin",
      superuserPassword: file.superuserPassword,
      postgresPassword: file.postgresPassword,
      caFile: path.join(dir, "ca.crt"),
    };
    await ensureTemplate(cluster);
    return cluster;
  });
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

async function superuserClient(cluster: LocalCluster, database: string): Promise<Client> {
  const client = new Client({ connectionString: databaseUrl(cluster, database, "superuser") });
  await client.connect();
  return client;
}

/** Rebuilds the template database when the platform fixture changed (keyed by the fixture's hash). */
async function ensureTemplate(cluster: LocalCluster): Promise<void> {
  const fixture = fs.readFileSync(FIXTURE, "utf8");
  const stamp = `fixture:${createHash("sha256").update(fixture).digest("hex").slice(0, 16)}`;
  const admin = await superuserClient(cluster, "postgres");
  try {
    const { rows } = await admin.query(
      "select shobj_description(oid, 'pg_database') as stamp from pg_database where datname = $1",
      [TEMPLATE_DATABASE],
    );
    if (rows[0]?.stamp === stamp) return;
    if (rows.length) {
      await admin.query(`alter database ${TEMPLATE_DATABASE} is_template false`);
      await admin.query(`drop database ${TEMPLATE_DATABASE} with (force)`);
    }
    // Roles are cluster-wide; the password is set here so it never sits in the fixture file.
    await admin.query(`do $$ begin if not exists (select 1 from pg_roles where rolname = 'postgres') then
      create role postgres login; end if; end $$`);
    await admin.query(`alter role postgres password ${literal(cluster.postgresPassword)}`);
    await admin.query(`create database ${TEMPLATE_DATABASE} owner postgres`);
    const template = await superuserClient(cluster, TEMPLATE_DATABASE);
    try {
      await template.query(fixture);
    } finally {
      await template.end();
    }
    await admin.query(`alter database ${TEMPLATE_DATABASE} is_template true`);
    await admin.query(`comment on database ${TEMPLATE_DATABASE} is ${literal(stamp)}`);
  } finally {
    await admin.end();
  }
}

/** A fresh Supabase-shaped database (dropped first if it exists). */
export async function createDatabase(cluster: LocalCluster, database: string): Promise<string> {
  const admin = await superuserClient(cluster, "postgres");
  try {
    await admin.query(`drop database if exists ${ident(database)} with (force)`);
    await admin.query(`create database ${ident(database)} template ${TEMPLATE_DATABASE} owner postgres`);
  } finally {
    await admin.end();
  }
  return databaseUrl(cluster, database);
}

/** A Supabase-shaped database, created if it does not exist yet; an existing one is kept as it is. */
export async function ensureDatabase(cluster: LocalCluster, database: string): Promise<string> {
  const admin = await superuserClient(cluster, "postgres");
  try {
    const { rows } = await admin.query("select 1 from pg_database where datname = $1", [database]);
    if (!rows.length)
      await admin.query(`create database ${ident(database)} template ${TEMPLATE_DATABASE} owner postgres`);
  } finally {
    await admin.end();
  }
  return databaseUrl(cluster, database);
}

export async function dropDatabase(cluster: LocalCluster, database: string): Promise<void> {
  const admin = await superuserClient(cluster, "postgres");
  try {
    await admin.query(`drop database if exists ${ident(database)} with (force)`);
  } finally {
    await admin.end();
  }
}

export function stopCluster(name = "local"): void {
  const dataDir = path.join(clusterRoot(), name, "data");
  if (isRunning(dataDir)) pgTool("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"]);
}

export function destroyCluster(name = "local"): void {
  stopCluster(name);
  fs.rmSync(path.join(clusterRoot(), name), { recursive: true, force: true });
  fs.rmSync(path.join(clusterRoot(), `${name}.json`), { force: true });
}

/** Whether the cluster holds `database`. */
export async function databaseExists(cluster: LocalCluster, database: string): Promise<boolean> {
  const admin = await superuserClient(cluster, "postgres");
  try {
    return (await admin.query("select 1 from pg_database where datname = $1", [database])).rows.length > 0;
  } finally {
    await admin.end();
  }
}

/**
 * The database `start` creates and `url` names without --db: the local stack's. Both must mean the same one, or
 * `url` hands out the URL of a database the stack never converged (issue 27: it printed `postgres`'s).
 */
export const DEFAULT_DATABASE = "stage2";

/** What `start` and `url` say on stderr beside the URL: which cluster and database, never the password. */
export function describeDatabase(
  cluster: Pick<LocalCluster, "name" | "host" | "port">,
  database: string,
  what: string,
): string {
  return `localdb: cluster ${cluster.name} at ${cluster.host}:${cluster.port}, database ${database} (${what})`;
}

async function main(argv: string[]): Promise<void> {
  const [command = "start", ...rest] = argv;
  const option = (flag: string, fallback: string): string => {
    const i = rest.indexOf(flag);
    return i >= 0 && rest[i + 1] ? rest[i + 1] : fallback;
  };
  const name = option("--name", "local");
  switch (command) {
    case "start":
    case "url": {
      const cluster = await ensureCluster(name);
      const db = option("--db", DEFAULT_DATABASE);
      let what: string;
      if (command === "start") {
        // A rehearsal database keeps its data across `stop` and `start`; `--fresh` starts it over.
        const existed = await databaseExists(cluster, db);
        await (rest.includes("--fresh") ? createDatabase : ensureDatabase)(cluster, db);
        what = rest.includes("--fresh") ? "created empty" : existed ? "kept as it was" : "created";
      } else if (await databaseExists(cluster, db)) {
        what = "exists";
      } else {
        throw new Error(
          `cluster ${name} has no database ${db}; create it with \`npm run localdb -- start --name ${name} --db ${db}\``,
        );
      }
      process.stderr.write(`${describeDatabase(cluster, db, what)}\n`);
      process.stdout.write(databaseUrl(cluster, db) + "\n");
      return;
    }
    case "stop":
      stopCluster(name);
      return;
    case "destroy":
      // Several `--name`s at once: the parallel test runner's clusters (test/run.ts).
      rest.forEach((arg, i) => arg === "--name" && rest[i + 1] && destroyCluster(rest[i + 1]));
      if (!rest.includes("--name")) destroyCluster(name);
      return;
    default:
      throw new Error(`unknown command "${command}"; use start | url | stop | destroy`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`localdb: ${error.message}\n`);
    process.exit(1);
  });
}
