/**
 * Text an operator or a remote system supplied (an override's reason, an API's project name, a label read back
 * from the database) is shown on terminals and CI log viewers, which obey control characters: ESC sequences can
 * erase or overwrite lines, hide text or fake a "passed". So before such text reaches a log, an output or the
 * state, every control character is replaced by a visible escape (`\x1b`), and the text is bounded.
 */
// C0 controls (tab and newline included: one reason, one line), DEL, C1 controls, and the Unicode line and
// paragraph separators and bidirectional overrides that reorder what a terminal shows. Matching them is the point.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string, maxLength = 500): string {
  const shown = text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
  return shown.length > maxLength
    ? `${shown.slice(0, maxLength)}... (${shown.length - maxLength} more characters)`
    : shown;
}

/**
 * The same escapes for text of several lines (an error message, a function's body read from the database): line
 * breaks and tabs stay, every other control character shows as its escape. Not bounded.
 */
export function printableLines(text: string): string {
  return text
    .split("\n")
    .map((line) =>
      line
        .split("\t")
        .map((part) => printable(part, Number.MAX_SAFE_INTEGER))
        .join("\t"),
    )
    .join("\n");
}

export function hasControlCharacters(text: string): boolean {
  CONTROL.lastIndex = 0;
  return CONTROL.test(text);
}

const HTML: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

/**
 * Text for a GitHub markdown comment or job summary, where a value read from the database must stay text: no HTML
 * (escaped), no emphasis, code, table cell break or link syntax (backslash-escaped), no @mention, #reference or
 * autolinked URL (a word joiner, U+2060, after `@`, `#`, `://` and `www`, which GitHub's linkers do not cross).
 * Control characters are escaped and the text bounded, as printable() does.
 */
export function markdownText(text: string, maxLength = 500): string {
  return printable(text, maxLength)
    .replace(/[&<>]/g, (c) => HTML[c])
    .replace(/[\\`*_[\]()!|~{}]/g, "\\$&")
    .replace(/([@#])(?=[\w-])/g, "$1\u2060")
    .replace(/:\/\//g, ":\u2060//")
    .replace(/\bwww\./gi, (w) => `${w.slice(0, 3)}\u2060.`);
}
