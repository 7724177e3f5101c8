/**
 * The database URL (STAGE2_DATABASE_URL, config/credentials.ts), read once, the way the driver reads it, and checked before anything connects.
 *
 * node-postgres lets a URL's query override its host, port and user (`...@db.<ref>.supabase.co/postgres?host=
 * 10.0.0.9`), and it sends the password in the clear unless the URL asks for TLS. So the URL is parsed with
 * node-postgres' own parser (pg-connection-string), every check (the right project, the report's target) reads
 * what it returned, and the connection is opened from those same values, never from the string again:
 *   - the query may only say how to use TLS (sslmode, sslrootcert); any other parameter is refused, host, port
 *     and user first, since they would silently move the connection elsewhere;
 *   - TLS is required to any host that is not this machine: `sslmode=verify-full` with the project's CA
 *     (`sslrootcert`, Supabase: Database Settings -> SSL Configuration -> Download certificate), or at least
 *     `sslmode=require` (encrypted, server not verified). libpq's meanings, not node-postgres' (which reads
 *     `require` as `verify-full`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "pg-connection-string";

export type TlsMode = "off" | "require" | "verify-ca" | "verify-full";

export interface DatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly tls: TlsMode;
  /** The CA certificate file (`sslrootcert`), resolved against the project folder. */
  readonly caFile?: string;
}

const TLS_MODES: Readonly<Record<string, TlsMode>> = {
  disable: "off",
  allow: "off",
  prefer: "off",
  require: "require",
  "verify-ca": "verify-ca",
  "verify-full": "verify-full",
};

/** Query parameters the URL may carry: only how to use TLS. */
const ALLOWED_PARAMETERS = new Set(["sslmode", "sslrootcert"]);

const FIX_TLS =
  "add ?sslmode=verify-full&sslrootcert=<the project's CA file> (Supabase: Database Settings -> SSL Configuration " +
  "-> Download certificate), or at least ?sslmode=require";

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The target a URL names, or the problems that stop it being used (each a sentence for `STAGE2_DATABASE_URL: ...`).
 * Never echoes the URL (it holds the password).
 */
export function parseDatabaseUrl(
  url: string,
  projectRoot: string,
): { target: DatabaseTarget; problems: [] } | { target?: undefined; problems: string[] } {
  let authority: URL;
  try {
    authority = new URL(url);
  } catch {
    return { problems: ["is not a URL; use postgresql://<user>:<percent-encoded password>@<host>:<port>/<database>"] };
  }
  if (authority.protocol !== "postgresql:" && authority.protocol !== "postgres:") {
    return { problems: ["must start with postgresql://"] };
  }
  if (!authority.hostname) return { problems: ["names no host"] };
  const problems: string[] = [];
  const keys = [...new Set(authority.searchParams.keys())];
  for (const key of keys.filter((k) => !ALLOWED_PARAMETERS.has(k))) {
    problems.push(
      ["host", "hostaddr", "port", "user", "password", "dbname", "database"].includes(key)
        ? `its query sets ${key}, which would override what the URL says before the ?; put the ${key} in the URL itself`
        : `its query sets ${key}, which Stage 2 does not pass on; only sslmode and sslrootcert may follow the ?`,
    );
  }
  if (problems.length) return { problems };

  // The query holds only the TLS settings, which are read below with libpq's meanings; the parser would read
  // them with its own (and open the sslrootcert file itself).
  const bare = new URL(url);
  bare.search = "";
  const parsed = parse(bare.toString());
  const host = parsed.host ?? "";
  const port = parsed.port ? Number(parsed.port) : 5432;
  const sslmode = authority.searchParams.get("sslmode");
  const tls = sslmode === null ? "off" : TLS_MODES[sslmode];
  if (tls === undefined) {
    problems.push(`sslmode=${sslmode} is not one of ${Object.keys(TLS_MODES).join(", ")}`);
  } else if (tls === "off" && !isLoopback(host)) {
    problems.push(
      `connects to ${host} without TLS (${sslmode === null ? "no sslmode" : `sslmode=${sslmode}`}), so the password ` +
        `would cross the network in the clear; ${FIX_TLS}`,
    );
  }
  const rootcert = authority.searchParams.get("sslrootcert");
  const caFile = rootcert ? path.resolve(projectRoot, rootcert) : undefined;
  if (caFile && !isReadableFile(caFile)) problems.push(`sslrootcert=${rootcert}: no readable file at ${caFile}`);
  if (tls === "verify-ca" && !caFile) problems.push(`sslmode=verify-ca needs sslrootcert=<the CA file>`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`port ${parsed.port} is not a TCP port`);
  if (problems.length || tls === undefined) return { problems };
  return {
    target: {
      host,
      port,
      database: parsed.database ?? "postgres",
      user: parsed.user ?? "",
      password: parsed.password ?? "",
      tls,
      caFile,
    },
    problems: [],
  };
}

function isReadableFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The user `role` logs in as where `connectedUser` does. Supabase's pooler (Supavisor) names the project in the
 * user, after a dot (`postgres.<ref>`), and routes every role of the project that way: another role through the
 * same pooler is `<role>.<ref>`. A direct connection names the role alone.
 */
export function loginUserFor(role: string, connectedUser: string): string {
  const project = /^[^.]+(\..+)$/.exec(connectedUser)?.[1] ?? "";
  return `${role}${project}`;
}

/**
 * `url` logging in as `role` with `password`: everything else (host, port, database, sslmode and sslrootcert)
 * kept as the URL says it, so the role reaches the same database the same way. For a URL that parseDatabaseUrl
 * accepted; the password is percent-encoded, as the parser decodes it.
 */
export function urlForRole(url: string, role: string, password: string): string {
  const bare = new URL(url);
  bare.search = "";
  const connected = parse(bare.toString()).user ?? "";
  const next = new URL(url);
  next.username = encodeURIComponent(loginUserFor(role, connected));
  next.password = encodeURIComponent(password);
  return next.toString();
}

/** `host:port/database as user`, never the password. */
export function describeTarget(target: Pick<DatabaseTarget, "host" | "port" | "database" | "user">): string {
  return `${target.host}:${target.port}/${target.database} as ${target.user}`;
}

/** node-postgres' `ssl` option for a TLS mode, with libpq's meanings. */
export function tlsOptions(
  target: DatabaseTarget,
): false | { ca?: string; rejectUnauthorized: boolean; checkServerIdentity?: () => undefined; servername?: string } {
  if (target.tls === "off") return false;
  const ca = target.caFile ? fs.readFileSync(target.caFile, "utf8") : undefined;
  if (target.tls === "require") return { rejectUnauthorized: false };
  return {
    ca,
    rejectUnauthorized: true,
    servername: isIpAddress(target.host) ? undefined : target.host,
    ...(target.tls === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
  };
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
