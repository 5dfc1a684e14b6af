#!/usr/bin/env bash
# ctest `docs`: the API reference's check (scripts/dev.sh docs builds the
# reference itself). Doxygen reads the public headers as docs/Doxyfile says
# and fails on any warning, among them a public declaration without a ///
# comment. Only the warnings matter here: it writes doxygen's XML (no HTML,
# no source listings) to a temporary directory, in under a second. Skipped
# (exit 77) where doxygen is not installed.
set -euo pipefail
cd "$1"
command -v doxygen >/dev/null || { echo "docs: doxygen is not installed (apt-get install doxygen): SKIPPED"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cat docs/Doxyfile
 echo "OUTPUT_DIRECTORY = $out"
 echo "GENERATE_HTML = NO"
 echo "GENERATE_XML = YES"
 echo "XML_PROGRAMLISTING = NO") | doxygen -
echo "docs: every public declaration is documented and doxygen $(doxygen --version) gives no warning"
