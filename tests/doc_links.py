#!/usr/bin/env python3
"""Every document the repository cites is in the repository: each `NAME.md`
named in a source file or document is a tracked file (matched by the end of
its path), and each relative Markdown link resolves to a tracked file or
folder.

    python3 tests/doc_links.py [ROOT]
"""
import os
import re
import sys

sys.dont_write_bytecode = True  # run from the source tree: leave no cache there
from notes import SOURCE, tracked  # noqa: E402  (one list of the checkout's files, one rule for what is source)

NAMED = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)*[\w][\w./-]*\.md)\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def main(argv):
    root = os.path.abspath(argv[0] if argv else os.path.join(os.path.dirname(__file__), ".."))
    files = tracked(root)
    paths = set(files)
    folders = {os.path.dirname(f) for f in files}
    while "" not in folders and folders:
        folders |= {os.path.dirname(d) for d in folders}
    errors = []
    for f in files:
        if not SOURCE.search(f) or f == "tests/doc_links.py":
            continue
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as text:
            for n, line in enumerate(text, 1):
                for m in NAMED.finditer(line):
                    name = m.group(1)
                    rel = os.path.normpath(os.path.join(os.path.dirname(f), name))
                    bare = re.sub(r"^(\.{1,2}/)+", "", name)
                    if rel in paths or any(p == bare or p.endswith("/" + bare) for p in paths):
                        continue
                    errors.append(f"{f}:{n}: cites {name}, which is not in the repository")
                if not f.endswith(".md"):
                    continue
                for m in LINK.finditer(line):
                    target = m.group(1).split("#", 1)[0]
                    if not target or re.match(r"^[a-z]+:", target):
                        continue
                    rel = os.path.normpath(os.path.join(os.path.dirname(f), target))
                    if rel not in paths and rel not in folders:
                        errors.append(f"{f}:{n}: links to {m.group(1)}, which is not in the repository")
    for e in errors[:50]:
        print("doc_links:", e)
    if len(errors) > 50:
        print(f"doc_links: and {len(errors) - 50} more")
    print(f"doc_links: {len(files)} files read, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
