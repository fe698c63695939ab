#!/bin/sh
# Writes a C file that holds FILE's bytes, for building a file into the binary:
#   scripts/embed.sh NAME FILE > out.c
# defines `const unsigned char NAME[]` (the bytes, then a NUL so that text can
# be read as a string) and `const size_t NAME_len` (the size without the NUL).
# POSIX sh and od only, so that the build needs nothing more.
set -eu
name=$1
file=$2
len=$(wc -c <"$file" | tr -d ' ')
printf '/* Generated from %s by scripts/embed.sh; do not edit. */\n' "$file"
printf '#include <stddef.h>\n\n'
printf 'extern const unsigned char %s[];\nextern const size_t %s_len;\n\n' "$name" "$name"
printf 'const unsigned char %s[] = {\n' "$name"
od -An -v -tx1 "$file" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
printf '    0x00};\nconst size_t %s_len = %s;\n' "$name" "$len"
