/**
 * The application, simulated: a steady mix of PostgREST-shaped requests through the real RLS policies.
 *
 *   npm run load -- --url <postgres url> [--seconds 30] [--rate 100] [--connections 8] [--users 40]
 *                   [--projects-per-user 25] [--setup-url <url>] [--sampler-url <url>] [--sample-ms 50]
 *                   [--auth-url <url>] [--auth-connections 2] [--seed 17] [--report json]
 *
 * --url is the application's connection (every request switches to role authenticated with a user's JWT
 * claims); --setup-url (default: --url) creates the users, profiles, tenant_admin roles and memberships, so it
 * must be able to write auth.users (the superuser; postgres on the local test bed); --sampler-url (default:
 * --setup-url) is the separate session that samples pg_locks for lock waits; --auth-url (none by default) adds
 * sign-ins to the mix, the auth server's transaction on the auth tables sent on a pool of its own, so it must be
 * able to `set local role supabase_auth_admin` (the superuser on the local test bed; often the --setup-url). Prints the requests, failures by
 * SQLSTATE, p50/p99/max latency and the longest lock wait of any application statement; `--report json`
 * prints the same as JSON. For a local, throwaway database only: it writes users and rows.
 */
import {
  LOAD_APPLICATION_NAME,
  DEFAULT_WORKLOAD,
  describeFailure,
  LoadGenerator,
  now,
  prepareWorkload,
} from "./online/load";
import { lockWaitEpisodes, oneLine, writeStatements, type LockWaitEpisode } from "./online/locks";
import { LockSampler } from "./online/sampler";
import { formatFailures, formatMs, summarize, summarizeByKind, type LatencySummary } from "./online/stats";
import { describeUrl, numberOption, parseArgs, sleep } from "./online/cli";
import { authLockWaits } from "./online/analysis";
import type { AuthLockWaits } from "./online/report";

export interface LoadReport {
  readonly target: string;
  readonly rate: number;
  readonly seconds: number;
  readonly connections: number;
  readonly users: { readonly members: number; readonly tenantAdmins: number; readonly projectsPerUser: number };
  readonly summary: LatencySummary;
  readonly byKind: Record<string, LatencySummary>;
  readonly errors: Record<string, string>;
  readonly lockWaits: {
    readonly method: string;
    readonly longest: LockWaitEpisode | null;
    readonly episodes: readonly LockWaitEpisode[];
  };
  /** The application's waits on auth tables (sign-ins' tables); null without --auth-url. */
  readonly authLockWaits: AuthLockWaits | null;
}

const OPTIONS = {
  url: "value",
  seconds: "value",
  rate: "value",
  connections: "value",
  users: "value",
  "projects-per-user": "value",
  "setup-url": "value",
  "sampler-url": "value",
  "sample-ms": "value",
  "auth-url": "value",
  "auth-connections": "value",
  seed: "value",
  report: "value",
} as const;

export async function runLoad(argv: readonly string[], log: (line: string) => void): Promise<LoadReport> {
  const options = parseArgs(argv, OPTIONS);
  if (typeof options.url !== "string") throw new Error("--url <postgres url> is required");
  if (options.report !== undefined && options.report !== "json" && options.report !== "text")
    throw new Error("--report must be json or text");
  const url = options.url;
  const setupUrl = typeof options["setup-url"] === "string" ? options["setup-url"] : url;
  const samplerUrl = typeof options["sampler-url"] === "string" ? options["sampler-url"] : setupUrl;
  const seconds = numberOption(options, "seconds", 30);
  const rate = numberOption(options, "rate", 100);
  const connections = Math.round(numberOption(options, "connections", 8));
  const sampleMs = numberOption(options, "sample-ms", 50);
  const authUrl = typeof options["auth-url"] === "string" ? options["auth-url"] : undefined;
  const authConnections = Math.round(numberOption(options, "auth-connections", 2));
  const workloadOptions = {
    ...DEFAULT_WORKLOAD,
    users: Math.round(numberOption(options, "users", DEFAULT_WORKLOAD.users)),
    projectsPerUser: Math.round(numberOption(options, "projects-per-user", DEFAULT_WORKLOAD.projectsPerUser)),
  };

  const workload = await prepareWorkload(setupUrl, workloadOptions);
  const admins = workload.users.filter((u) => u.access === "tenant_admin").length;
  log(
    `load: ${rate} requests/s for ${seconds} s, ${connections} connections, ${workload.users.length} users ` +
      `(${workload.users.length - admins} project members, ${admins} tenant admins, ${workloadOptions.projectsPerUser} projects each) ` +
      `on ${describeUrl(url)}` +
      (authUrl ? `; sign-ins on ${authConnections} connections on ${describeUrl(authUrl)}` : ""),
  );
  const sampler = new LockSampler(samplerUrl, LOAD_APPLICATION_NAME, sampleMs);
  await sampler.start();
  const load = new LoadGenerator({
    url,
    rate,
    connections,
    workload,
    seed: typeof options.seed === "string" ? Number(options.seed) : undefined,
    authUrl,
    authConnections,
  });
  await load.start();
  const end = load.started + seconds * 1000;
  // Progress every 5 s: what was due, what finished, and the p99 of the last 5 s.
  while (now() < end) {
    await sleep(Math.min(5000, Math.max(0, end - now())));
    const t = now();
    const recent = summarize(load.samples(), t - 5000, t);
    log(
      `  t=${((t - load.started) / 1000).toFixed(0)}s done ${load.completed} failed ${summarize(load.samples()).failed}` +
        ` p99 (last 5 s) ${formatMs(recent.p99Ms)}`,
    );
  }
  const samples = await load.stop();
  const locks = await sampler.stop();
  const episodes = lockWaitEpisodes(locks);
  const summary = summarize(samples, load.started, end);
  return {
    target: describeUrl(url),
    rate,
    seconds,
    connections,
    users: {
      members: workload.users.length - admins,
      tenantAdmins: admins,
      projectsPerUser: workloadOptions.projectsPerUser,
    },
    summary,
    byKind: summarizeByKind(samples),
    errors: load.errors(),
    lockWaits: {
      method:
        `pg_locks (granted = false) joined with pg_stat_activity for application_name ${LOAD_APPLICATION_NAME}, ` +
        `sampled every ${sampleMs} ms from a separate session; a wait lasts from pg_locks.waitstart to the last ` +
        `sample that saw it (a wait shorter than one interval can be missed)`,
      longest: episodes[0] ?? null,
      episodes: episodes.slice(0, 10),
    },
    authLockWaits: authUrl ? authLockWaits(episodes) : null,
  };
}

export function formatLoadReport(report: LoadReport): string {
  const s = report.summary;
  const lines = [
    `requests: ${s.count} (${s.statements} statements besides BEGIN/role/claims/COMMIT), ` +
      `${s.ratePerSecond?.toFixed(1) ?? "?"}/s offered`,
    `failed: ${s.failed} (${formatFailures(s.failures)})`,
    ...Object.keys(s.failures).map(
      (code) => `  ${code}: ${describeFailure(code)}; last: ${report.errors[code] ?? "?"}`,
    ),
    `latency, from when the request was due to COMMIT: p50 ${formatMs(s.p50Ms)}, p99 ${formatMs(s.p99Ms)}, max ${formatMs(s.maxMs)}`,
    "by type:",
    ...Object.entries(report.byKind).map(
      ([kind, k]) =>
        `  ${kind.padEnd(18)} ${String(k.count).padStart(6)}  failed ${k.failed}  p50 ${formatMs(k.p50Ms)}  p99 ${formatMs(k.p99Ms)}`,
    ),
  ];
  const longest = report.lockWaits.longest;
  lines.push(
    longest
      ? `longest lock wait of an application statement: ${formatMs(longest.waitedAtLeastMs)} ` +
          `(at most ${formatMs(longest.waitedAtMostMs)}) for ${longest.mode} on ${longest.relation ?? longest.locktype}, ` +
          `blocked by ${longest.blockers.map((b) => `${b.applicationName || "?"}: ${oneLine(writeStatements(b.query)[0] ?? b.query, 100)}`).join(" | ") || "?"}`
      : "longest lock wait of an application statement: none seen",
    `  method: ${report.lockWaits.method}`,
  );
  const auth = report.authLockWaits;
  if (auth) {
    const e = auth.longest[0];
    lines.push(
      `lock waits on auth tables (sign-ins' tables): ${auth.count}; longest ` +
        (e
          ? `${formatMs(e.waitedAtLeastMs)} (at most ${formatMs(e.waitedAtMostMs)}) for ${e.mode} on ${e.relation}`
          : "none seen"),
    );
  }
  return lines.join("\n");
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const json = argv.includes("json") && argv[argv.indexOf("json") - 1] === "--report";
  runLoad(argv, (line) => (json ? process.stderr : process.stdout).write(line + "\n"))
    .then((report) => {
      process.stdout.write((json ? JSON.stringify(report, null, 2) : formatLoadReport(report)) + "\n");
    })
    .catch((error: Error) => {
      process.stderr.write(`load failed: ${error.message}\n`);
      process.exit(1);
    });
}
