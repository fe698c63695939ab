#!/usr/bin/env bash
# Refreshes the console's third-party files in console/vendor/ from npm, at
# the versions pinned below, and writes console/vendor/MANIFEST (file,
# package, version, licence, sha256 of the file as served). The files are
# committed: the build and the tests need no network. To upgrade one, change
# its version here, run this script, then `make test` (tests/console/).
#   scripts/vendor-console.sh
# Needs npm (scripts/install-deps.sh lint installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

PREACT_VERSION=10.29.8
HTM_VERSION=3.1.1
UPLOT_VERSION=1.6.32
DAGRE_VERSION=3.1.4

# package@version  file in the package  name in console/vendor/
files=(
  "preact@$PREACT_VERSION dist/preact.module.js preact.mjs"
  "preact@$PREACT_VERSION hooks/dist/hooks.module.js preact-hooks.mjs"
  "htm@$HTM_VERSION dist/htm.module.js htm.mjs"
  "uplot@$UPLOT_VERSION dist/uPlot.esm.js uplot.mjs"
  "uplot@$UPLOT_VERSION dist/uPlot.min.css uplot.css"
  "@dagrejs/dagre@$DAGRE_VERSION dist/dagre.esm.js dagre.mjs"
)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aop-vendor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=console/vendor
mkdir -p "$out/licenses"

# npm pack checks each tarball against the registry's integrity hash.
declare -A unpacked
for row in "${files[@]}"; do
  read -r spec _ _ <<<"$row"
  [ -n "${unpacked[$spec]:-}" ] && continue
  dir="$tmp/$(tr '/@' '__' <<<"$spec")"
  mkdir -p "$dir"
  tgz=$(cd "$dir" && npm pack --silent "$spec" | tail -n 1)
  tar xzf "$dir/$tgz" -C "$dir"
  unpacked[$spec]=$dir/package
done

rm -f "$out"/*.mjs "$out"/*.css "$out"/licenses/*
manifest="# file package version licence sha256 (written by scripts/vendor-console.sh)"
for row in "${files[@]}"; do
  read -r spec path name <<<"$row"
  pkg=${unpacked[$spec]}
  # The browser has no package resolution: bare imports of another vendored
  # package become relative ones (hooks imports "preact"). Source maps are
  # not vendored, so their comments go too (a debugger would ask for them).
  sed -e 's/from"preact"/from".\/preact.mjs"/g' -e "s/from 'preact'/from '.\/preact.mjs'/g" \
    -e '/^\/\/# sourceMappingURL=/d' \
    "$pkg/$path" >"$out/$name"
  if grep -Eq "from ?['\"][a-z@][a-z0-9@/._-]*['\"]" "$out/$name"; then
    echo "vendor-console: $name still imports a bare module name" >&2
    exit 1
  fi
  pname=${spec%@*}
  version=${spec##*@}
  licence=$(node -e 'console.log(require(process.argv[1]).license)' "$pkg/package.json")
  lic=$(ls "$pkg" | grep -iE '^licen[cs]e' | head -n 1 || true)
  [ -n "$lic" ] && cp "$pkg/$lic" "$out/licenses/$(tr '/@' '__' <<<"$pname" | sed 's/^_//').txt"
  sum=$(sha256sum "$out/$name" | cut -d' ' -f1)
  manifest+=$'\n'"$name $pname $version $licence $sum"
done
printf '%s\n' "$manifest" >"$out/MANIFEST"
cat "$out/MANIFEST"
