/** What a call printed on stdout (the provider reports kept objects there: the CLI shows it as the run's output). */
export async function printedBy(fn: () => Promise<unknown>): Promise<string> {
  const original = process.stdout.write.bind(process.stdout);
  let text = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = original;
  }
  return text;
}

/** What a command run left behind: a CLI run (test/support/engine.ts) or a shell command (test/support/shell.ts). */
interface Run {
  readonly code?: number | null;
  readonly signal?: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Everything a run printed. */
export const output = (run: Run): string => `${run.stdout}\n${run.stderr}`;

const ERROR_LINE = /\berror\b|\berrored\b|\bfailed\b|\bpanic\b|\bSTAGE2_[A-Z_]+:/i;

/**
 * What an assertion about a run shows when it fails: how the run ended, every line that names an error, then the
 * end of the output. The lines come first because a verification report or a long plan can fill any tail and push
 * the one line that says why out of a CI log.
 */
export function failureOf(run: Run, tail = 3000): string {
  const text = output(run);
  const errors = [...new Set(text.split("\n").filter((line) => ERROR_LINE.test(line)))]
    .slice(0, 40)
    .map((line) => (line.length > 500 ? `${line.slice(0, 500)}...` : line));
  const ended = run.signal ? `ended by ${run.signal}` : `exit ${run.code ?? "?"}`;
  return [
    `${ended}; ${errors.length} line(s) naming an error:`,
    ...errors,
    `--- the last ${Math.min(tail, text.length)} characters ---`,
    text.slice(-tail),
  ].join("\n");
}
