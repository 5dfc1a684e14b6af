#!/usr/bin/env python3
"""The tutorial's programs, extracted, and their output checked against the page.

docs/tutorial.md holds complete programs in blocks opened with
```cpp tutorial=NAME, each followed by the output it prints in a block opened
with ```text output=NAME (optionally tolerance=X: numbers then match to X,
relative or absolute, instead of 1e-6).

  tutorial.py extract PAGE DIR      writes DIR/NAME.cpp and DIR/NAME.out (only
                                    when changed) and prints the names, ';'-joined
  tutorial.py check PAGE NAME EXE   runs EXE in a fresh directory and compares
                                    its standard output with the page's block

The comparison is line by line: the text around the numbers must be the same
(runs of spaces count as one), and each number must match its counterpart.
"""
import os
import re
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\S+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def blocks(page):
    """{name: (code, expected, tolerance)} from the page; errors for a half pair."""
    text = open(page, encoding="utf-8").read()
    code, out = {}, {}
    for m in FENCE.finditer(text):
        attrs = dict(a.split("=", 1) for a in m.group(2).split() if "=" in a)
        if "tutorial" in attrs:
            code[attrs["tutorial"]] = m.group(3)
        elif "output" in attrs:
            out[attrs["output"]] = (m.group(3), float(attrs.get("tolerance", "1e-6")))
    for name in sorted(set(code) ^ set(out)):
        sys.exit(f"tutorial.py: {page}: program '{name}' has "
                 + ("no output block" if name in code else "an output block but no program"))
    if not code:
        sys.exit(f"tutorial.py: {page}: no ```cpp tutorial=NAME blocks")
    return {n: (code[n], out[n][0], out[n][1]) for n in code}


def write_if_changed(path, text):
    if os.path.exists(path) and open(path, encoding="utf-8").read() == text:
        return
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def extract(page, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    found = blocks(page)
    for name, (code, expected, _) in found.items():
        if not re.fullmatch(r"[a-z0-9_]+", name):
            sys.exit(f"tutorial.py: program name '{name}' must be lower-case letters, digits and _")
        write_if_changed(os.path.join(out_dir, name + ".cpp"), code)
    print(";".join(found))


def same(expected, actual, tolerance):
    """None when actual matches expected, else a message naming the first difference."""
    want, got = expected.rstrip("\n").split("\n"), actual.rstrip("\n").split("\n")
    if len(want) != len(got):
        return f"{len(got)} lines printed, the page shows {len(want)}"
    for i, (w, g) in enumerate(zip(want, got), 1):
        skeleton = lambda s: re.sub(r"\s+", " ", NUMBER.sub("#", s).strip())
        if skeleton(w) != skeleton(g):
            return f"line {i}: printed\n  {g}\nthe page shows\n  {w}"
        for a, b in zip(NUMBER.findall(w), NUMBER.findall(g)):
            x, y = float(a), float(b)
            if abs(x - y) > tolerance * max(1.0, abs(x)):
                return f"line {i}: printed {b} where the page shows {a} (tolerance {tolerance})\n  {g}"
    return None


def check(page, name, exe):
    found = blocks(page)
    if name not in found:
        sys.exit(f"tutorial.py: no program '{name}' in {page}")
    _, expected, tolerance = found[name]
    with tempfile.TemporaryDirectory() as work:  # programs may write files
        run = subprocess.run([os.path.abspath(exe)], cwd=work, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        sys.exit(f"tutorial '{name}': exit status {run.returncode}\n{run.stdout}{run.stderr}")
    problem = same(expected, run.stdout, tolerance)
    if problem:
        sys.exit(f"tutorial '{name}' no longer prints what {os.path.basename(page)} shows: {problem}")
    print(f"tutorial '{name}': output as on the page")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "extract":
        extract(args[1], args[2])
    elif len(args) == 4 and args[0] == "check":
        check(args[1], args[2], args[3])
    else:
        sys.exit(__doc__)
