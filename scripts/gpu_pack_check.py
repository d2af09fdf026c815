#!/usr/bin/env python3
"""Checks that the GPU pack (scripts/gpu_pack.sh) needs nothing the GPU machine lacks, and prints the
dependency part of its manifest as Markdown.

For every ELF file under PACK/bin and PACK/lib (readelf from binutils):
  - each needed shared library is in the pack's lib/ or on the list of what the GPU machine provides
    (the CUDA 13 runtime, cuBLAS, cuDNN 9, libgomp, zlib, glibc, libstdc++ and libgcc);
  - each versioned symbol it needs is old enough: glibc <= 2.39, libstdc++ GLIBCXX <= 3.4.32 and
    CXXABI <= 1.3.14 (gcc 13), and the CUDA libraries only by their soname versions (libcudnn.so.9,
    libcublas.so.13, libcudart.so.13: one version tag for every release of a major version);
  - the run path (RUNPATH/RPATH) finds the pack's lib/ ($ORIGIN/../lib or $ORIGIN).
It also lists every cuDNN and cuBLAS function the pack imports: all of them must exist in the cuDNN 9.14
and the cuBLAS of CUDA 13.0 on the GPU machine (the pack is built against newer headers). With
--against PACKAGE==VERSION (repeatable) it proves that: it reads the shared libraries out of NVIDIA's wheel
of that release on PyPI (only the library files, by HTTP range requests: a few hundred KiB of a wheel of
hundreds of MiB) and checks that each symbol the pack imports from them is defined there under the same
version tag, e.g. --against nvidia-cudnn-cu13==9.14.0.64 --against nvidia-cublas==13.0.0.19.

Usage: gpu_pack_check.py PACK [--against PACKAGE==VERSION ...]   (exit 1 when a check fails; the report
goes to stdout). Standard library only."""
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile

# What the GPU machine provides (../shared/guide/gpu-machine.md): sonames.
PROVIDED = {
    "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcudnn.so.9",
    "libgomp.so.1", "libz.so.1", "libstdc++.so.6", "libgcc_s.so.1", "libc.so.6", "libm.so.6", "libdl.so.2",
    "libpthread.so.0", "librt.so.1", "ld-linux-x86-64.so.2",
}
# Highest symbol versions there: glibc 2.39, gcc 13.
LIMITS = {"GLIBC": (2, 39), "GLIBCXX": (3, 4, 32), "CXXABI": (1, 3, 14), "GCC": (13, 0)}
SONAME_TAGS = {"libcudnn.so.9", "libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13"}


def readelf(*args):
    return subprocess.run(["readelf", *args], capture_output=True, text=True, check=True).stdout


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def version_tuple(s):
    return tuple(int(x) for x in s.split("."))


class RangeFile(io.RawIOBase):
    """A read-only file over HTTP range requests (enough for zipfile to read one member of a remote wheel)."""

    def __init__(self, url):
        self.url, self.pos = url, 0
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=60) as r:
            self.size = int(r.headers["Content-Length"])

    def seekable(self):
        return True

    def readable(self):
        return True

    def seek(self, off, whence=0):
        self.pos = off if whence == 0 else self.pos + off if whence == 1 else self.size + off
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, b):
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{self.pos + n - 1}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)


def released_libraries(spec, into):
    """Writes the x86-64 Linux wheel's lib*.so.N files of PACKAGE==VERSION into `into`; returns their paths."""
    name, version = spec.split("==")
    index = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(index, timeout=60) as r:
        release = json.load(r)["releases"][version]
    url = next(f["url"] for f in release if f["filename"].endswith(".whl") and "x86_64" in f["filename"])
    wheel = zipfile.ZipFile(io.BufferedReader(RangeFile(urllib.parse.urljoin(index, url)), 1 << 20))
    paths = []
    for member in wheel.namelist():
        base = os.path.basename(member)
        if re.fullmatch(r"lib(cudnn|cublas|cublasLt|cudart)\.so\.\d+", base):
            path = os.path.join(into, base)
            with open(path, "wb") as f:
                f.write(wheel.read(member))
            paths.append(path)
    return paths


def imported(path):
    """{version tag (the soname for CUDA libraries): {symbol, ...}} of the undefined symbols of an ELF file."""
    out = {}
    for m in re.finditer(r"\bUND\s+([A-Za-z_]\w*)@(\S+)", readelf("--dyn-syms", "-W", path)):
        out.setdefault(m.group(2), set()).add(m.group(1))
    return out


def defined(path):
    """{symbol: version tag} of what a shared library exports."""
    out = {}
    for m in re.finditer(r"^\s*\d+:\s+\S+\s+\d+\s+(?:FUNC|OBJECT)\s+\S+\s+\S+\s+(?!UND)\S+\s+([A-Za-z_]\w*)@+(\S+)",
                         readelf("--dyn-syms", "-W", path), re.M):
        out[m.group(1)] = m.group(2)
    return out


def check_against(specs, files, problems):
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            try:
                libs = released_libraries(spec, tmp)
            except Exception as e:  # no network, no such release
                problems.append(f"could not read the libraries of {spec} from PyPI: {e}")
                continue
            for lib in libs:
                soname = os.path.basename(lib)
                have = defined(lib)
                need = set()
                for _, _, p in files:
                    need |= imported(p).get(soname, set())
                missing = sorted(n for n in need if have.get(n) != soname)
                if missing:
                    problems.append(f"{soname} of {spec} lacks {', '.join(missing)}")
                lines.append(f"- {soname} of {spec}: the {len(need)} functions the pack imports from it are all "
                             f"defined there under {soname}" if not missing else
                             f"- {soname} of {spec}: {len(missing)} of {len(need)} missing")
    return lines


def main():
    pack = sys.argv[1]
    specs = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--against" and i + 1 < len(sys.argv)]
    bundled = set(os.listdir(os.path.join(pack, "lib"))) if os.path.isdir(os.path.join(pack, "lib")) else set()
    problems = []
    rows = []
    imports = {"cudnn": set(), "cublas": set()}
    files = []
    for sub in ("bin", "lib"):
        d = os.path.join(pack, sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and not os.path.islink(p) and is_elf(p):
                files.append((sub, name, p))
    if not files:
        print(f"no ELF files under {pack}/bin or {pack}/lib")
        return 1
    for sub, name, p in files:
        dyn = readelf("-d", p)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
        runpath = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[([^\]]+)\]", dyn)
        missing = [n for n in needed if n not in PROVIDED and n not in bundled]
        if missing:
            problems.append(f"{sub}/{name} needs {', '.join(missing)}: neither in the pack nor on the GPU machine")
        if any(n in bundled for n in needed):
            paths = ":".join(runpath).split(":") if runpath else []
            if not any(x in ("$ORIGIN/../lib", "$ORIGIN") for x in paths):
                problems.append(f"{sub}/{name} needs bundled libraries but its run path {paths} does not reach lib/")
        # Version needs: "  0x0010: Name: GLIBC_2.34  Flags: none  Version: 4" under "File: libc.so.6".
        vneed = readelf("-V", p)
        worst = {}
        current_file = None
        for line in vneed.splitlines():
            m = re.search(r"File: (\S+)\s+Cnt:", line)
            if m:
                current_file = m.group(1)
                continue
            m = re.search(r"Name: (\S+)\s+Flags:", line)
            if not m or current_file is None:
                continue
            tag = m.group(1)
            if current_file in SONAME_TAGS:
                if tag != current_file:
                    problems.append(f"{sub}/{name} needs {tag} from {current_file} (only {current_file} is known to "
                                    "exist in every release of that major version)")
                continue
            vm = re.match(r"(GLIBCXX|GLIBC|CXXABI|GCC)_([\d.]+)$", tag)
            if not vm:
                continue
            kind, ver = vm.group(1), version_tuple(vm.group(2))
            if ver > worst.get(kind, ()):
                worst[kind] = ver
            if ver > LIMITS[kind]:
                problems.append(f"{sub}/{name} needs {tag}, newer than the GPU machine's "
                                f"{kind}_{'.'.join(map(str, LIMITS[kind]))}")
        syms = readelf("--dyn-syms", "-W", p)
        for m in re.finditer(r"\bUND\s+(cudnn\w+|cublas\w+)", syms):
            imports["cudnn" if m.group(1).startswith("cudnn") else "cublas"].add(m.group(1))
        size = os.path.getsize(p)
        newest = ", ".join(f"{k}_{'.'.join(map(str, v))}" for k, v in sorted(worst.items()))
        rows.append(f"| {sub}/{name} | {size / 2**20:.2f} MiB | {', '.join(needed)} | {newest or '-'} | "
                    f"{':'.join(runpath) or '-'} |")
    print("| file | size | needs | newest symbol versions | run path |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    for lib in ("cudnn", "cublas"):
        names = sorted(imports[lib])
        print(f"{lib} functions imported ({len(names)}): {', '.join(names) if names else '-'}")
    if specs:
        print()
        print("Against the GPU machine's releases:")
        print("\n".join(check_against(specs, files, problems)))
    print()
    if problems:
        print("Dependency check: FAILED")
        for pr in problems:
            print(f"- {pr}")
        return 1
    print("Dependency check: passed (every needed library is bundled or on the GPU machine; symbol versions "
          "within glibc 2.39, gcc 13 and the CUDA libraries' soname tags)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
