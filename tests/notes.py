#!/usr/bin/env python3
"""Notes: a Note is defined once, by a comment line that starts with
`Note [Title]:`, and cited anywhere else as `Note [Title]`. This check fails
on a Note defined twice, on titles that differ only in case, and on a Note
cited but defined nowhere; it also keeps the index at the end of
docs/design.md equal to the definitions (`--write` rewrites that index).

    python3 tests/notes.py [--write] [ROOT]
"""
import os
import re
import subprocess
import sys

DEFINITION = re.compile(r"^\s*(?://|#|\*|/\*)\s*Note \[([^\]]+)\]:")
CITATION = re.compile(r"Note \[([^\]]+)\]")
SOURCE = re.compile(r"\.(cpp|hpp|h|py|sh|cmake|js|md|txt)$|(^|/)(CMakeLists\.txt|compare|ddp_scaling|run)$")
INDEX_HEADING = "## Index of Notes"
INDEX_MARK = "<!-- generated: tests/notes.py writes this table -->"


def tracked(root):
    """Every file of the checkout (git's list; without git, the tree less build folders)."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True, text=True).stdout.split("\n")
        return sorted(f for f in out if f and os.path.isfile(os.path.join(root, f)))
    except (OSError, subprocess.CalledProcessError):
        found = []
        for d, _, names in os.walk(root):
            if "/." in d or "/build" in d:
                continue
            found += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return sorted(found)


def files(root):
    """The source files and documents among them, where Notes and citations live."""
    return [f for f in tracked(root) if SOURCE.search(f)]


def scan(root):
    defined, cited = {}, {}
    for f in files(root):
        if f == "tests/notes.py":
            continue
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as text:
            for n, line in enumerate(text, 1):
                m = DEFINITION.match(line)
                if m:
                    defined.setdefault(m.group(1), []).append(f"{f}:{n}")
                for c in CITATION.finditer(line):
                    if not (m and c.start() == m.start(1) - len("Note [")):
                        cited.setdefault(c.group(1), []).append(f"{f}:{n}")
    return defined, cited


def index_table(defined):
    rows = ["| Note | defined in |", "|---|---|"]
    for title in sorted(defined, key=str.lower):
        path = defined[title][0].rsplit(":", 1)[0]
        rows.append(f"| {title} | [{path}](../{path}) |")
    return "\n".join(rows)


def main(argv):
    write = "--write" in argv
    args = [a for a in argv if a != "--write"]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    defined, cited = scan(root)
    errors = []
    for title, places in sorted(defined.items()):
        if len(places) > 1:
            errors.append(f"Note [{title}] is defined {len(places)} times: {', '.join(places)}")
    lower = {}
    for title in defined:
        lower.setdefault(title.lower(), []).append(title)
    for titles in lower.values():
        if len(titles) > 1:
            errors.append("Notes differ only in case: " + ", ".join(f"[{t}]" for t in sorted(titles)))
    for title, places in sorted(cited.items()):
        if title not in defined:
            shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
            errors.append(f"Note [{title}] is cited but defined nowhere: {shown}")
    design = os.path.join(root, "docs", "design.md")
    with open(design, encoding="utf-8") as f:
        doc = f.read()
    if INDEX_HEADING not in doc:
        errors.append(f"docs/design.md has no '{INDEX_HEADING}' section")
    else:
        head = doc[: doc.index(INDEX_HEADING)]
        want = f"{head}{INDEX_HEADING}\n\n{INDEX_MARK}\n\n{index_table(defined)}\n"
        if doc != want:
            if write:
                with open(design + ".tmp", "w", encoding="utf-8") as f:
                    f.write(want)
                os.replace(design + ".tmp", design)
                print("notes: docs/design.md's index rewritten")
            else:
                errors.append("docs/design.md's index of Notes is out of date: run python3 tests/notes.py --write")
    for e in errors:
        print("notes:", e)
    print(f"notes: {len(defined)} defined, {len(cited)} cited, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
