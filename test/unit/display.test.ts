/**
 * Text from the database or an operator, where a person reads it (config/printable.ts, report/plan.ts
 * formatPlan): terminals get control characters escaped, markdown gets no HTML, link, mention or table break,
 * both get values bounded, and the JSON keeps every value whole.
 */
import { strict as assert } from "node:assert";
import { markdownText, printable, printableLines } from "../../config/printable";
import { formatPlan, type PlanLine } from "../../report/plan";

const ERASE = "\u001b[2K\u001b[1A";

describe("text shown to people", () => {
  it("terminal text: every control character escaped, line breaks kept only where lines are expected", () => {
    assert.equal(printable(`ok${ERASE}\r\u0007\u202e`), "ok\\x1b[2K\\x1b[1A\\x0d\\x07\\u202e");
    assert.equal(printableLines(`one\n\ttwo${ERASE}`), "one\n\ttwo\\x1b[2K\\x1b[1A");
  });

  it("markdown: HTML, links, mentions, references, autolinks and table breaks stay text", () => {
    const hostile = [
      '<img src=x onerror="alert(1)"><details open>',
      "[approve](https://evil.example/x) ![x](https://evil.example/p.png)",
      "@octocat @org/team #1234 GH-1",
      "see www.evil.example and https://evil.example",
      "| injected | cell |\n| --- |",
      "**bold** _it_ `code` ~~gone~~",
    ].join(" ");
    const shown = markdownText(hostile);
    assert.doesNotMatch(shown, /<|>/, "raw HTML");
    assert.doesNotMatch(shown, /[^\\]\]\(/, "a link");
    assert.doesNotMatch(shown, /@[\w-]/, "a mention");
    assert.doesNotMatch(shown, /#\d/, "an issue reference");
    assert.doesNotMatch(shown, /:\/\/|www\./i, "an autolink");
    assert.doesNotMatch(shown, /(^|[^\\])\|/, "a table cell break");
    assert.doesNotMatch(shown, /(^|[^\\])[*_`~]/, "emphasis or code");
    assert.doesNotMatch(shown, /\n/, "a line break");
  });

  it("bounds a long value in text and markdown, and keeps it whole in JSON", () => {
    const line: PlanLine = {
      group: "drift",
      subject: "policy contacts_select on public.contacts",
      what: `USING differs (database: ${"x".repeat(20_000)}${ERASE})`,
      up: "recreates it (drop and create in one transaction)",
    };
    const text = formatPlan({ attention: [], access: [], lines: [line] }, "text");
    assert.ok(text.length < 1_000, `${text.length} characters`);
    assert.match(text, /\.\.\. \(\d+ more characters\)/);
    assert.ok(!text.includes("\u001b"));
    const markdown = formatPlan({ attention: [], access: [], lines: [line] }, "markdown");
    assert.ok(markdown.length < 1_200, `${markdown.length} characters`);
    const json = JSON.parse(formatPlan({ attention: [], access: [], lines: [line] }, "json")) as {
      changes: PlanLine[];
    };
    assert.equal(json.changes[0].what, line.what);
  });
});

describe("the plan in a pull request comment (formatPlan markdown, maxLength)", () => {
  it("keeps every access line and cuts change lines that do not fit, saying how many", () => {
    const access = Array.from({ length: 30 }, (_, i) => ({
      group: "change" as const,
      role: "anon",
      change: "gains" as const,
      what: `SELECT on public.table_${i}`,
      table: `public.table_${i}`,
      up: "grants it",
    }));
    const lines = Array.from({ length: 500 }, (_, i) => ({
      group: "drift" as const,
      subject: `policy p_${i} on public.t`,
      what: `USING differs (database: ${"x".repeat(250)})`,
      up: "recreates it",
    }));
    const shown = formatPlan({ attention: ["up gives anon access: ..."], access, lines }, "markdown", {
      maxLength: 20_000,
    });
    assert.ok(shown.length <= 20_000, `${shown.length} characters`);
    for (const a of access) assert.ok(shown.includes(a.what.replace(/_/g, "\\_")), `${a.what} was cut`);
    assert.match(shown, /^\*\*Attention: up gives anon access: \.\.\.\.\*\*/);
    const kept = shown.split("\n").filter((l) => l.startsWith("| drift |")).length;
    assert.ok(kept > 0 && kept < lines.length);
    assert.match(shown, new RegExp(`\\(${lines.length - kept} more lines did not fit here`));
  });
});
