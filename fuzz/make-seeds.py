#!/usr/bin/env python3
"""Write seed inputs for the unpack fuzz target.

Usage: make-seeds.py CORPUS_DIR

Each seed is one options byte (0: a layer above fuzz_targets/unpack.rs's lower layer,
1: a base layer, 2: gzip) followed by a tar archive. The archives hold whiteouts, opaque
markers, hardlinks to lower files, and symlinks into the probe directory used as
parents. They also hold PAX records with xattrs and long names, GNU long names, devices,
and GNU sparse files in each of GNU tar's formats.
"""

import gzip
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUTSIDE = "/tmp/layerfs-fuzz/outside"


def member(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", **fields):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = 1700000000
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def archive(members, fmt=tarfile.PAX_FORMAT):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def seeds():
    yield "whiteouts", archive([
        member("d/", tarfile.DIRTYPE, 0o755),
        member("d/.wh.f"),
        member(".wh.gone"),
        member("opaque/.wh..wh..opq"),
        member("opaque/new", data=b"new\n"),
        member(".wh.d"),
        member("d/again", data=b"again\n"),
    ])
    yield "lower-hardlinks", archive([
        member("b", tarfile.LNKTYPE, linkname="f"),
        member("d/c", tarfile.LNKTYPE, linkname="b"),
        member("p2", tarfile.LNKTYPE, linkname="pipe"),
        member("s2", tarfile.LNKTYPE, linkname="s"),
        member("x", tarfile.LNKTYPE, linkname="d/f"),
        member("f", data=b"replaced\n"),
    ])
    yield "symlink-parents", archive([
        member("s/victim", data=b"evil\n"),
        member("rel/victim", data=b"evil\n"),
        member("d/sub/dir/secret", data=b"evil\n"),
        member("own", tarfile.SYMTYPE, 0o777, linkname=OUTSIDE),
        member("own/victim", data=b"evil\n"),
        member("h", tarfile.LNKTYPE, linkname="own/victim"),
    ])
    yield "names", archive([
        member("../outside/victim", data=b"evil\n"),
        member(OUTSIDE + "/victim", data=b"evil\n"),
        member("a/../../x", data=b"evil\n"),
        member("long/" + "n" * 200, data=b"long\n"),
        member("caf\udce9", data=b"latin-1\n"),
    ], fmt=tarfile.GNU_FORMAT)
    yield "metadata", archive([
        member("suid", mode=0o4755, data=b"x", uid=1000, gid=1000,
               pax_headers={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16,
                            "SCHILY.xattr.user.a": "1",
                            "SCHILY.xattr.trusted.overlay.opaque": "y",
                            "mtime": "1700000000.5"}),
        member("ro/", tarfile.DIRTYPE, 0o555),
        member("ro/f", data=b"f"),
        member("null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
        member("fifo", tarfile.FIFOTYPE, 0o600),
        member("link", tarfile.SYMTYPE, 0o777, linkname=OUTSIDE + "/victim",
               pax_headers={"SCHILY.xattr.trusted.x": "y"}),
    ])
    yield "root-symlink", archive([member("./", tarfile.SYMTYPE, 0o777, linkname=OUTSIDE)])
    yield "duplicates", archive([
        member("a", data=b"1"),
        member("a/", tarfile.DIRTYPE, 0o700),
        member("a/b", data=b"2"),
        member("a", tarfile.SYMTYPE, 0o777, linkname=OUTSIDE),
        member("a", data=b"3"),
    ])
    yield from sparse_seeds()


def sparse_seeds():
    """Sparse archives written by GNU tar in its gnu format and the three PAX versions."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "holes"
        with open(path, "wb") as file:
            file.truncate(1 << 20)
            file.seek(8192)
            file.write(b"data")
            file.seek(700000)
            file.write(b"more")
        formats = {
            "sparse-gnu": ["--format=gnu"],
            "sparse-pax-1.0": ["--format=posix", "--sparse-version=1.0"],
            "sparse-pax-0.1": ["--format=posix", "--sparse-version=0.1"],
            "sparse-pax-0.0": ["--format=posix", "--sparse-version=0.0"],
        }
        for name, flags in formats.items():
            command = ["tar", "--sparse", "-cf", "-", "-C", scratch, *flags, "holes"]
            yield name, subprocess.run(command, check=True, capture_output=True).stdout


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-seeds.py CORPUS_DIR")
    corpus = Path(sys.argv[1])
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seeds():
        (corpus / f"seed-{name}").write_bytes(b"\x00" + data)
        (corpus / f"seed-{name}-base").write_bytes(b"\x01" + data)
        (corpus / f"seed-{name}-gzip").write_bytes(b"\x02" + gzip.compress(data, mtime=0))


if __name__ == "__main__":
    main()
