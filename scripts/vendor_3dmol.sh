#!/usr/bin/env bash
# Re-create usecases/reporting/vendor/ from the npm registry: 3dmol VERSION (default 2.5.5),
# its tarball checked against the registry's sha512 integrity, then build/3Dmol-min.js and
# LICENSE copied out unchanged. Prints the sha256 values for viewer.py and vendor/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-2.5.5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "3dmol@$version" --silent >/dev/null)
tarball="$work/3dmol-$version.tgz"
want=$(npm view "3dmol@$version" dist.integrity)
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$want" != "$got" ]; then
  echo "error: 3dmol-$version.tgz does not match the registry's integrity ($want)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/build/3Dmol-min.js package/LICENSE
install -m 0644 "$work/package/build/3Dmol-min.js" usecases/reporting/vendor/3Dmol-min.js
install -m 0644 "$work/package/LICENSE" usecases/reporting/vendor/3Dmol-LICENSE.txt
sha256sum "$tarball" usecases/reporting/vendor/3Dmol-min.js usecases/reporting/vendor/3Dmol-LICENSE.txt
