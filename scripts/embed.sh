#!/bin/sh
# Writes a C file that holds files' bytes, for building them into the binary.
#   scripts/embed.sh NAME FILE > out.c
# defines `const unsigned char NAME[]` (the bytes, then a NUL so that text can
# be read as a string) and `const size_t NAME_len` (the size without the NUL).
#   scripts/embed.sh --files NAME DIR FILE... > out.c
# defines `const embedded_file NAME[]` (src/core/embedded.h), one row per
# FILE (each under DIR, named by its path below DIR, rows sorted by name, an
# ETag from cksum), and `const size_t NAME_count`.
# POSIX sh, od and cksum only, so that the build needs nothing more.
set -eu

bytes() { # FILE: the file's bytes as C initialisers, then the NUL
  od -An -v -tx1 "$1" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
  printf '    0x00};\n'
}

if [ "$1" != --files ]; then
  name=$1
  file=$2
  len=$(wc -c <"$file" | tr -d ' ')
  printf '/* Generated from %s by scripts/embed.sh; do not edit. */\n' "$file"
  printf '#include <stddef.h>\n\n'
  printf 'extern const unsigned char %s[];\nextern const size_t %s_len;\n\n' "$name" "$name"
  printf 'const unsigned char %s[] = {\n' "$name"
  bytes "$file"
  printf 'const size_t %s_len = %s;\n' "$name" "$len"
  exit 0
fi

name=$2
dir=${3%/}
shift 3
printf '/* Generated from %s/ by scripts/embed.sh; do not edit. */\n' "$dir"
printf '#include "core/embedded.h"\n\n'
printf 'extern const embedded_file %s[];\nextern const size_t %s_count;\n\n' "$name" "$name"
rows=""
i=0
for file in $(for f in "$@"; do printf '%s\n' "$f"; done | LC_ALL=C sort); do
  case "$file" in
    "$dir"/*) ;;
    *) echo "embed.sh: $file is not under $dir" >&2; exit 1 ;;
  esac
  rel=${file#"$dir"/}
  set -- $(cksum <"$file")
  printf 'static const unsigned char f%d[] = {\n' "$i"
  bytes "$file"
  rows="$rows    {\"$rel\", f$i, $2, \"\\\"$1-$2\\\"\"},
"
  i=$((i + 1))
done
printf '\nconst embedded_file %s[] = {\n%s};\n' "$name" "$rows"
printf 'const size_t %s_count = %d;\n' "$name" "$i"
