#!/usr/bin/env bash
# The wheel in a fresh venv, run from an empty folder with no repository on sys.path: the
# console script classifies a clip, and `import vidattn` loads a model and classifies a file.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$python -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-deps --no-index dist/vidattn-*.whl
cd "$work"
passed=0
out=$(env -u PYTHONPATH "$work/venv/bin/vidattn" classify "$repo/models/demo" "$repo/examples/data/left.mp4" --top 1 2>/dev/null)
case "$out" in *" left "*) passed=$((passed + 1));; *) echo "wheel CLI: unexpected output: $out"; exit 1;; esac
got=$(env -u PYTHONPATH "$work/venv/bin/python" -c "
import sys, vidattn
assert '$repo' not in ' '.join(sys.path), sys.path
assert vidattn.__file__.startswith('$work'), vidattn.__file__
m = vidattn.load('$repo/models/demo')
print(m.classify('$repo/examples/data/up.mp4', top=1)[0][0], vidattn.__version__)")
case "$got" in "up "*) passed=$((passed + 1));; *) echo "wheel import: unexpected output: $got"; exit 1;; esac
# Only libc, libm, libstdc++, libgcc_s and the bundled libsleef are needed.
libdir=$("$work/venv/bin/python" -c "import vidattn, os; print(os.path.dirname(vidattn.__file__))")
if LD_LIBRARY_PATH="$libdir" ldd "$libdir/libvidattn.so" | grep -v -E "linux-vdso|ld-linux|libc\.so|libm\.so|libstdc\+\+|libgcc_s|libsleef" | grep -q "=>"; then
  echo "wheel library needs more than libc, libm, libstdc++, libgcc_s and libsleef:"; ldd "$libdir/libvidattn.so"; exit 1
fi
passed=$((passed + 1))
echo "wheel: $passed passed, 0 failed"
