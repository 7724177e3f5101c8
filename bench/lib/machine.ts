/**
 * The machine a benchmark ran on, recorded beside its figures (results/*.md): the machines here are shared, so a
 * reader compares the ratios measured within one run, and needs to know what ran them.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { Client } from "pg";
import { pulumiEnv, REPO_ROOT, runPulumi } from "../../cli/lib/pulumi";

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly kernel: string;
  readonly node: string;
  /** "v3.248.0" */
  readonly pulumi: string;
  readonly postgres: string;
}

/** This machine, the engine scripts/engine.sh built, and the PostgreSQL behind `databaseUrl` (`where` says which). */
export async function describeMachine(databaseUrl: string, where = ""): Promise<Machine> {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>("select current_setting('server_version') as v");
    const pulumi = await runPulumi(["version"], { cwd: REPO_ROOT, env: pulumiEnv() });
    return {
      cpu,
      cores: os.cpus().length,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      node: process.version,
      pulumi: pulumi.stdout.trim(),
      postgres: `${rows[0].v}${where ? ` (${where})` : ""}`,
    };
  } finally {
    await client.end();
  }
}

/** The machine in one sentence of a report. */
export function machineLine(m: Machine): string {
  return (
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Linux ${m.kernel}; Node ${m.node}, Pulumi ${m.pulumi}, ` +
    `PostgreSQL ${m.postgres}.`
  );
}
