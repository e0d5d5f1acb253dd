#!/usr/bin/env python3
"""Checks that each image of deploy/Containerfile installs the Debian packages
owning every shared library its binary needs, and no package it does not.

For each target kopt-<x>, the packages are those of the `apt-get install` in
its own stage. For the binary of the same name in the build directory, the
needed libraries are its DT_NEEDED entries (`readelf -d`), each resolved to a
path with `ldd` and to the package owning that path with `dpkg -S`. This
machine is Debian 12 like the images, so the package names are the ones the
images get. Sanitizer runtimes (an ASan build) are left out: images are built
without them. Exit 77 (skipped) when a binary is not built or readelf, ldd or
dpkg is missing.
"""

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys

BINARIES = {
    "kopt-agent": "agent",
    "kopt-ingest": "ingest",
    "kopt-aggregator": "aggregator",
    "kopt-advisor": "advisor",
}
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\.so")
SKIP = 77


def containerfile_packages(text):
    """{target: set of packages its own stage installs} for kopt-* stages."""
    logical = re.sub(r"\\\n", " ", text)
    stages = re.split(r"^(?=FROM\s)", logical, flags=re.M | re.I)
    out = {}
    for st in stages:
        m = re.match(r"FROM\s+\S+\s+AS\s+(kopt-[a-z]+)", st, re.I)
        if not m:
            continue
        pkgs = set()
        for inst in re.finditer(r"apt-get install -y --no-install-recommends\s+((?:[a-z0-9][a-z0-9.+-]*\s*)+)", st):
            pkgs |= set(inst.group(1).split())
        out[m.group(1)] = pkgs
    return out


def needed(binary):
    p = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout)


def resolved(binary):
    """{soname: path} as the dynamic loader of this machine finds them."""
    p = subprocess.run(["ldd", binary], capture_output=True, text=True)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)\s+\(", line)
        if m:
            out[m.group(1)] = m.group(2)
            continue
        # The dynamic loader is listed by its path alone; a binary names it
        # as NEEDED when it uses thread-local storage (__tls_get_addr).
        m = re.match(r"\s*(/\S+/(ld-linux[^/\s]*))\s+\(", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


@functools.lru_cache(maxsize=None)  # the four binaries share most libraries
def owner(path):
    """The Debian package owning path, trying the /usr-merged spellings
    (dpkg knows a file under the path its package ships it at)."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for c in (path, real):
        candidates.append(c[4:] if c.startswith("/usr/") else "/usr" + c)
    for c in candidates:
        p = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if p.returncode == 0:
            for line in p.stdout.splitlines():
                if not line.startswith("diversion"):
                    return line.split(": ", 1)[0].split(":", 1)[0]
    return None


def required_packages(binary):
    """({package: [sonames]}, [problems]) for one binary."""
    paths = resolved(binary)
    pkgs, problems = {}, []
    for lib in needed(binary):
        if SANITIZER_LIBS.match(lib):
            continue
        path = paths.get(lib)
        if not path or path == "not":
            problems.append(f"{lib}: not found by ldd on this machine")
            continue
        pkg = owner(path)
        if pkg is None:
            problems.append(f"{lib} ({path}): no Debian package owns it (dpkg -S)")
            continue
        pkgs.setdefault(pkg, []).append(lib)
    return pkgs, problems


def compare(target, listed, required):
    """Failures of one target: needed packages not listed, listed ones not needed."""
    fails = []
    for pkg in sorted(set(required) - listed):
        fails.append(f"{target}: needs {pkg} (for {', '.join(required[pkg])}) but its stage does not install it")
    for pkg in sorted(listed - set(required)):
        fails.append(f"{target}: installs {pkg}, which owns none of the binary's libraries")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--repo", required=True)
    a = ap.parse_args()

    for tool in ("readelf", "ldd", "dpkg"):
        if not shutil.which(tool):
            print(f"check_image_libs: SKIP: {tool} not installed")
            return SKIP
    text = open(os.path.join(a.repo, "deploy", "Containerfile")).read()
    listed = containerfile_packages(text)
    fails = []
    required_of = {}
    for target, folder in BINARIES.items():
        binary = os.path.join(a.build_dir, folder, target)
        if not os.path.isfile(binary):
            print(f"check_image_libs: SKIP: {binary} not built")
            return SKIP
        if target not in listed:
            fails.append(f"deploy/Containerfile: no stage `AS {target}`")
            continue
        if not listed[target]:
            fails.append(f"deploy/Containerfile: stage {target} installs no packages")
            continue
        required, problems = required_packages(binary)
        required_of[target] = required
        fails += [f"{target}: {p}" for p in problems]
        fails += compare(target, listed[target], required)
        print(f"{target}: {len(required)} packages for {sum(len(v) for v in required.values())} libraries: "
              + " ".join(sorted(required)))

    # The comparison must notice a package taken out of a list: drop each
    # needed package in turn from a copy of the list and expect a failure.
    for target, required in required_of.items():
        for pkg in required:
            if not compare(target, listed[target] - {pkg}, required):
                fails.append(f"self-check: dropping {pkg} from {target} went unnoticed")

    for f in fails:
        print("FAIL " + f)
    checked = len(required_of)
    print(f"check_image_libs: {checked} images checked, {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
