#!/usr/bin/env bash
# Builds the kernel objects from their sources reproducibly: bpf/flows.bpf.o (the TC pair) and
# bpf/health.bpf.o (the TCP health programs). The same sources and clang give the same bytes, so
# test/ebpf/object.test.ts can rebuild and compare with the committed objects.
# Usage: scripts/build-bpf.sh              builds both into bpf/
#        scripts/build-bpf.sh NAME OUTPUT  builds bpf/NAME.bpf.c (NAME: flows or health) into OUTPUT
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
clang="${CLANG:-clang}"
strip="${LLVM_STRIP:-llvm-strip}"
command -v "$clang" >/dev/null || { echo "build-bpf: $clang not found: install clang (apt-get install clang llvm libbpf-dev)" >&2; exit 1; }
command -v "$strip" >/dev/null || { echo "build-bpf: $strip not found: install llvm" >&2; exit 1; }

build() {
  local name="$1" out="$2" tmp
  [ -f "$root/bpf/$name.bpf.c" ] || { echo "build-bpf: no bpf/$name.bpf.c (flows or health)" >&2; exit 1; }
  tmp="$(mktemp "${TMPDIR:-/tmp}/flowtap-bpf.XXXXXX.o")"
  # -g is needed for the BTF that describes the maps and the CO-RE relocations; relative paths
  # and the prefix map keep the checkout location out of the object, and llvm-strip -g drops
  # DWARF (BTF stays).
  (cd "$root" && "$clang" -O2 -g -target bpf -mcpu=v3 -Wall -Werror \
    -I bpf -I "/usr/include/$(uname -m)-linux-gnu" \
    -fdebug-prefix-map="$root"=. -fdebug-compilation-dir=. \
    -c "bpf/$name.bpf.c" -o "$tmp") || { rm -f "$tmp"; exit 1; }
  "$strip" -g "$tmp"
  cp "$tmp" "$out"
  rm -f "$tmp"
}

if [ $# -eq 0 ]; then
  build flows "$root/bpf/flows.bpf.o"
  build health "$root/bpf/health.bpf.o"
else
  build "$1" "${2:-$root/bpf/$1.bpf.o}"
fi
