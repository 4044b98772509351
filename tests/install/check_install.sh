#!/usr/bin/env bash
# make install into a temporary prefix (through DESTDIR), then build and run the C examples
# against the installed copy with pkg-config, with no Swift toolchain on any loader path.
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
prefix=/opt/vidattn-test
make -s install PREFIX=$prefix DESTDIR="$stage" >/dev/null
root="$stage$prefix"
test -f "$root/include/vidattn.h" && test -f "$root/include/vidattn_types.h"
test -L "$root/lib/libvidattn.so" && test -L "$root/lib/libvidattn.so.0"
test "$(readlink "$root/lib/libvidattn.so.0")" = "libvidattn.so.$(sed -n 's/^#define VIDATTN_VERSION_STRING "\(.*\)"/\1/p' include/vidattn.h)"
# The .pc names the real prefix; point pkg-config at the staged copy.
export PKG_CONFIG_PATH="$root/lib/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$root" --cflags --libs vidattn)
for ex in attention classify; do
  cc -O2 -std=c99 -Wall -Werror examples/c/$ex.c -o "$stage/$ex" $flags -lm
done
env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$root/lib" "$stage/attention" >/dev/null
# The installed CLI carries its Swift runtime: it classifies a clip with no toolchain around.
if ldd "$root/bin/vidattn" | grep -qi swift; then echo "installed CLI links a Swift runtime library"; exit 1; fi
out=$(env -i PATH=/usr/bin:/bin "$root/bin/vidattn" classify models/demo examples/data/left.mp4 --top 1 2>/dev/null)
case "$out" in *" left "*) ;; *) echo "installed CLI: unexpected output: $out"; exit 1;; esac
echo "install: 3 passed, 0 failed"
