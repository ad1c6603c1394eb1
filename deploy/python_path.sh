#!/usr/bin/env bash
# Puts the built Python package (BUILD/python/mixcal: the generated stubs
# and python/mixcal's sources) on /usr/bin/python3's path, with a .pth file
# in its site-packages, so that `/usr/bin/python3 -c "import mixcal"` works
# from any folder. Without write access there it says what to set instead.
#   deploy/python_path.sh BUILD_DIR
set -euo pipefail
build="$(cd "${1:?usage: deploy/python_path.sh BUILD_DIR}" && pwd)"
site="$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')"
pth="$site/mixcal-build.pth"
if [[ "$(cat "$pth" 2>/dev/null)" == "$build/python" ]]; then exit 0; fi
if mkdir -p "$site" 2>/dev/null && echo "$build/python" > "$pth" 2>/dev/null; then
  echo "python: import mixcal now loads $build/python/mixcal ($pth)"
else
  echo "python: cannot write $pth; set PYTHONPATH=$build/python to import mixcal"
fi
