#!/usr/bin/env python3
"""Lines of code per Rust source file, as issue 21 counts them.

Not counted: blank lines, comment lines (`//`, `///`, `//!`, `/* ... */`), and a
`#[cfg(test)]` item (usually `mod tests { ... }`) with everything inside it.

    python3 scripts/code-lines.py              # files over 550, largest first; exit 1 if any
    python3 scripts/code-lines.py --all        # every file
    python3 scripts/code-lines.py --limit 400 src crates/tcp-lab-core/src
"""

import argparse
import os
import sys


def strip_strings_and_comments(text):
    """Replace string/char literal bodies and comments with spaces, keeping newlines,
    so that braces inside them do not count and comment-only lines become blank."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c == "r" and (text.startswith('r"', i) or text.startswith("r#", i)) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            j = i + 1
            hashes = 0
            while j < n and text[j] == "#":
                hashes, j = hashes + 1, j + 1
            if j < n and text[j] == '"':
                end = text.find('"' + "#" * hashes, j + 1)
                end = n if end < 0 else end + 1 + hashes
                out.append('"' + "".join(ch if ch == "\n" else "x" for ch in text[i + 1 : end - 1]) + '"')
                i = end
            else:
                out.append(c)
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"' + "".join(ch if ch == "\n" else "x" for ch in text[i + 1 : j]) + '"')
            i = j + 1
        elif c == "'":
            # char literal ('x', '\n', '\u{..}') vs lifetime ('a)
            if i + 2 < n and text[i + 1] == "\\":
                j = text.find("'", i + 2)
                out.append("'x'")
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                out.append("'x'")
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def code_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = strip_strings_and_comments(f.read()).split("\n")
    count = 0
    skipping = False  # inside a #[cfg(test)] item
    pending = False  # saw #[cfg(test)], waiting for the item's `{` or `;`
    depth = 0
    for line in lines:
        s = line.strip()
        if skipping:
            depth += s.count("{") - s.count("}")
            if depth <= 0:
                skipping = False
            continue
        if pending:
            if "{" in s:
                depth = s.count("{") - s.count("}")
                pending = False
                skipping = depth > 0
            elif s.endswith(";"):
                pending = False
            continue
        if s.startswith("#[cfg(test)]"):
            rest = s[len("#[cfg(test)]") :].strip()
            if rest:
                if "{" in rest:
                    depth = rest.count("{") - rest.count("}")
                    skipping = depth > 0
                elif not rest.endswith(";"):
                    pending = True
            else:
                pending = True
            continue
        if s:
            count += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="*", default=["src", "crates"])
    ap.add_argument("--limit", type=int, default=550)
    ap.add_argument("--all", action="store_true", help="list every file, not only those over the limit")
    args = ap.parse_args()
    rows = []
    for root in args.roots:
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "target"]
            for name in files:
                if name.endswith(".rs"):
                    path = os.path.join(dirpath, name)
                    rows.append((code_lines(path), path))
    rows.sort(reverse=True)
    over = [r for r in rows if r[0] > args.limit]
    for count, path in rows if args.all else over:
        print(f"{count:6}  {path}")
    print(f"{len(over)} of {len(rows)} files over {args.limit} lines of code", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
