#!/usr/bin/env bash
# Builds bpf/flows.bpf.o from bpf/flows.bpf.c reproducibly: the same sources and clang give the
# same bytes, so test/ebpf/object.test.ts can rebuild and compare with the committed object.
# Usage: scripts/build-bpf.sh [OUTPUT]   (default bpf/flows.bpf.o)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/bpf/flows.bpf.o}"
clang="${CLANG:-clang}"
strip="${LLVM_STRIP:-llvm-strip}"
command -v "$clang" >/dev/null || { echo "build-bpf: $clang not found: install clang (apt-get install clang llvm libbpf-dev)" >&2; exit 1; }
command -v "$strip" >/dev/null || { echo "build-bpf: $strip not found: install llvm" >&2; exit 1; }

tmp="$(mktemp "${TMPDIR:-/tmp}/flowtap-bpf.XXXXXX.o")"
trap 'rm -f "$tmp"' EXIT
# -g is needed for the BTF that describes the maps; relative paths and the prefix map keep the
# checkout location out of the object, and llvm-strip -g drops DWARF (BTF stays).
cd "$root"
"$clang" -O2 -g -target bpf -mcpu=v3 -Wall -Werror \
  -I bpf -I "/usr/include/$(uname -m)-linux-gnu" \
  -fdebug-prefix-map="$root"=. -fdebug-compilation-dir=. \
  -c bpf/flows.bpf.c -o "$tmp"
"$strip" -g "$tmp"
cp "$tmp" "$out"
