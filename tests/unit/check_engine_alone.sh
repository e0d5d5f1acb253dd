#!/bin/sh
# Fails if the program given (engine_alone: all of kopt_engine, linked without
# --as-needed) needs a shared library beyond libc, libm and the sanitizer
# runtimes: the engine must stay linkable alone (docs/engine.md).
set -eu

needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if [ -z "$needed" ]; then
  echo "engine_alone: readelf found no NEEDED entries in $1" >&2
  exit 1
fi
bad=$(printf '%s\n' "$needed" | grep -Ev '^(libc|libm|lib[a-z]*san|libgcc_s)\.so' || true)
if [ -n "$bad" ]; then
  echo "engine_alone: kopt_engine needs more than libc and libm:" $bad >&2
  exit 1
fi
echo "engine_alone: kopt_engine needs" $needed
