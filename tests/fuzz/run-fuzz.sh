#!/bin/sh
# run-fuzz.sh FUZZER SCRATCH_CORPUS SEED_CORPUS [libFuzzer flags...]
# libFuzzer writes what it finds into its first corpus dir: make that a
# scratch dir in the build tree so the seeds in the source tree stay as made.
set -eu
fuzzer=$1 scratch=$2 seeds=$3
shift 3
mkdir -p "$scratch"
exec "$fuzzer" "$@" "$scratch" "$seeds"
