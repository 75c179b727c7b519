#!/usr/bin/env bash
# Write the commit of this checkout and a checksum of each tracked file to DIR (default
# .devdata), for a copy of the tree that travels without git history (the lent GPU machine):
# scripts/device_env.sh checks the copy against the checksums and exports the commit, with
# dirty=1 when the tree was dirty here or differs there, so the records name their code.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.devdata}
mkdir -p "$dir"
dirty=0
[ -n "$(git status --porcelain --untracked-files=no)" ] && dirty=1
# tracked files deleted here are left out (the tree is dirty then, and says so)
git ls-files -z | while IFS= read -r -d '' f; do if [ -f "$f" ]; then printf '%s\0' "$f"; fi; done |
  xargs -0 -r sha256sum >"$dir/tree.sha256.part"
mv "$dir/tree.sha256.part" "$dir/tree.sha256"
echo "$(git rev-parse HEAD) $dirty" >"$dir/commit"
