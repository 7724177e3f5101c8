/** Small helpers shared by bench/load.ts and bench/online.ts: options, URL descriptions, sleeping. */

/** `--name value` options; flags without a value are `true`. Unknown options are refused, naming them. */
export function parseArgs(
  argv: readonly string[],
  known: Readonly<Record<string, "value" | "flag">>,
): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.replace(/^--/, "");
    if (!arg.startsWith("--") || !(name in known)) {
      problems.push(`unknown option ${arg}`);
      continue;
    }
    if (known[name] === "flag") out[name] = true;
    else if (i + 1 >= argv.length || argv[i + 1].startsWith("--")) problems.push(`${arg} needs a value`);
    else out[name] = argv[++i];
  }
  if (problems.length) throw new Error(problems.join("; "));
  return out;
}

/** A positive number option, or its default; a malformed one is an error naming the option. */
export function numberOption(options: Record<string, string | true>, name: string, fallback: number): number {
  const raw = options[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw === true || !Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

/** `host:port/database as user`, never the password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "5432"}${u.pathname} as ${decodeURIComponent(u.username)}`;
  } catch {
    return "a connection string that is not a URL";
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
