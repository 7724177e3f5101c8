/**
 * The house rules of the import graph (docs/architecture.md), checked over every TypeScript and JavaScript
 * file of the repository:
 *
 *   npm run lint:layers      (part of npm run check)
 *
 * 1. No import cycle, at the level of files.
 * 2. No folder imports one of a higher layer. From the bottom: config, transports, database, model, then
 *    preflight and report, then provider, components and policy, then what runs them (index.ts, cli, bench,
 *    scripts, test). Folders of one layer may import each other, cycles aside.
 *
 * Imports are read with TypeScript's own pre-processor (import, export ... from, require(), import()), type-only
 * imports included: a type still ties a lower layer to a higher one. Prints the folder-to-folder edges and
 * exits 1 with every violation named.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";

/** Each top-level folder (or root file) and its layer: a file may import its own layer or lower ones. */
export const LAYERS: Readonly<Record<string, number>> = {
  config: 0,
  transports: 1,
  database: 2,
  model: 3,
  preflight: 4,
  report: 4,
  provider: 5,
  components: 5,
  policy: 5,
  "index.ts": 6,
  cli: 6,
  bench: 6,
  scripts: 6,
  test: 6,
};

export type ImportGraph = Readonly<Record<string, readonly string[]>>;

/** Where a file belongs: its top-level folder, or itself at the root. */
export const roomOf = (file: string): string => file.split("/")[0];

/** Files imported by `file` (relative specifiers that resolve to a file of `files`). */
export function importsOf(file: string, text: string, files: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const spec of ts.preProcessFile(text, true, true).importedFiles) {
    if (!spec.fileName.startsWith(".")) continue;
    const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec.fileName));
    const target = [base, `${base}.ts`, `${base}.js`, `${base}/index.ts`, `${base}/index.js`].find((c) => files.has(c));
    if (target) found.push(target);
  }
  return found;
}

/** Imports from a folder to one of a higher layer, as "from -> to". Rooms the table does not know are named too. */
export function layerViolations(graph: ImportGraph): string[] {
  const problems = new Set<string>();
  for (const [file, targets] of Object.entries(graph)) {
    const from = roomOf(file);
    if (LAYERS[from] === undefined) {
      problems.add(`${file}: the folder ${from} has no layer in scripts/check-layers.ts LAYERS; give it one`);
      continue;
    }
    for (const target of targets) {
      const to = roomOf(target);
      if ((LAYERS[to] ?? Infinity) > LAYERS[from])
        problems.add(`${file} imports ${target} (${from} -> ${to}, a higher layer)`);
    }
  }
  return [...problems].sort();
}

/** Every import cycle among files, each as its files in order (Tarjan's strongly connected components). */
export function importCycles(graph: ImportGraph): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph[node] ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, indices.get(next)!));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph[node] ?? []).includes(node)) cycles.push(component.sort());
    }
  };
  for (const node of Object.keys(graph).sort()) if (!indices.has(node)) visit(node);
  return cycles;
}

/** The repository's import graph, from the files git knows (node_modules and generated files left out). */
export function repositoryGraph(root: string): ImportGraph {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts", "*.js"], {
    cwd: root,
    encoding: "utf8",
  })
    .split("\n")
    .filter((f) => f && fs.existsSync(path.join(root, f)) && !f.startsWith("policy/bin/"));
  const files = new Set(listed);
  return Object.fromEntries(listed.map((f) => [f, importsOf(f, fs.readFileSync(path.join(root, f), "utf8"), files)]));
}

function main(): number {
  const graph = repositoryGraph(path.resolve(__dirname, ".."));
  const edges = new Map<string, number>();
  for (const [file, targets] of Object.entries(graph)) {
    for (const target of targets) {
      const edge = `${roomOf(file)} -> ${roomOf(target)}`;
      if (roomOf(file) !== roomOf(target)) edges.set(edge, (edges.get(edge) ?? 0) + 1);
    }
  }
  const violations = layerViolations(graph);
  const cycles = importCycles(graph);
  const files = Object.keys(graph).length;
  const imports = Object.values(graph).reduce((n, t) => n + t.length, 0);
  process.stdout.write(
    `[layers] ${files} files, ${imports} imports, ${edges.size} folder edges:\n` +
      [...edges]
        .sort()
        .map(([edge, n]) => `[layers]   ${edge} (${n})\n`)
        .join(""),
  );
  for (const v of violations) process.stdout.write(`[layers] VIOLATION ${v}\n`);
  for (const c of cycles) process.stdout.write(`[layers] CYCLE ${c.join(" <-> ")}\n`);
  process.stdout.write(`[layers] ${violations.length} layer violations, ${cycles.length} import cycles\n`);
  return violations.length || cycles.length ? 1 : 0;
}

if (require.main === module) process.exit(main());
