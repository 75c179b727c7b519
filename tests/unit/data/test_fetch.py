"""Tests of data manifests and the fetch command against a real HTTP server on 127.0.0.1.

Archives are built from real COVID-SemiSeg files of ../shared/data; nothing outside the
loopback interface is ever contacted.
"""

from __future__ import annotations

import functools
import http.server
import io
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import NO_ORIGINAL, ORIGINAL_CODE, SHARED_DATA, require
from usecases.data.fetch import SUMS_NAME, fetch, main, resolve_data_root
from usecases.data.manifests import (
    read_checksums,
    sha256_file,
)
from usecases.errors import DataError

SHARED = SHARED_DATA
COVID = SHARED / "covid_semiseg"
SPIKE = SHARED / "spike" / "P0DTC2_spike_uniprot.fasta"
TOP = "Inf-Net-fb3a03b5b2f70642fbf2a12cde9e5c41b5ebd28e/"
PREFIX = TOP + "Dataset/"


def _need(path: Path) -> None:
    require(
        path.exists(), f"real data {path} is absent (../shared/data is only on dev and CI machines)"
    )


@dataclass
class Server:
    """A loopback HTTP server serving ``root``; ``paths`` lists every request path."""

    root: Path
    port: int
    paths: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("USECASE_BENCH_CACHE", str(tmp_path / "cache-base"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    paths: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(root=root, port=httpd.server_address[1], paths=paths)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def picked() -> dict[str, str]:
    """Four real COVID-SemiSeg files (image and mask, train and test) and their sha256."""
    _need(COVID / SUMS_NAME)
    sums = read_checksums(COVID / SUMS_NAME)
    rels = sorted(sums)
    chosen = [rels[0], rels[60], rels[-1], rels[-2000]]
    return {rel: sums[rel] for rel in chosen}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manifest(folder: Path, name: str, **fields: object) -> Path:
    base: dict[str, object] = {
        "name": name,
        "description": "test data",
        "url": None,
        "filename": f"{name}.bin",
        "license": "test",
        "citation": "test",
    }
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({**base, **fields}), encoding="utf-8")
    return folder


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _covid_setup(
    tmp_path: Path, server: Server, picked: dict[str, str], *, tamper: bool = False
) -> Path:
    """Serve a zip of the picked files laid out like the Inf-Net archive; return manifest dir."""
    members = {TOP + "README.md": b"upstream code, not extracted\n"}
    members[PREFIX + "extra/unlisted.txt"] = b"not in the checksum list\n"
    for i, rel in enumerate(picked):
        data = (COVID / rel).read_bytes()
        members[TOP + rel] = data + b"x" if tamper and i == 1 else data
    _zip(server.root / "infnet.zip", members)
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    lines = "".join(f"{digest}  {rel}\n" for rel, digest in picked.items())
    (mdir / "mini.sha256").write_text(lines, encoding="utf-8")
    return _manifest(
        mdir,
        "mini",
        url=server.url("infnet.zip"),
        filename="infnet.zip",
        archive="zip",
        member_prefix=PREFIX,
        strip_components=1,
        checksums_file="mini.sha256",
    )


def _assert_clean(parent: Path) -> None:
    """Nothing was left behind in the folder that would have held dest."""
    assert list(parent.iterdir()) == []


def test_fetch_zip_unpacks_verifies_and_caches(
    tmp_path: Path, server: Server, picked: dict[str, str]
) -> None:
    mdir = _covid_setup(tmp_path, server, picked)
    dest = tmp_path / "data" / "mini"
    assert fetch("mini", dest=dest, manifest_dir=mdir) == dest
    for rel in picked:
        assert (dest / rel).read_bytes() == (COVID / rel).read_bytes()
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == sorted([*picked, SUMS_NAME])
    assert read_checksums(dest / SUMS_NAME) == picked
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mini"]
    assert server.paths == ["/infnet.zip"]
    assert fetch("mini", dest=dest, manifest_dir=mdir) == dest
    assert server.paths == ["/infnet.zip"]
    assert resolve_data_root("mini", root=None, cache_base=dest.parent, manifest_dir=mdir) == dest
    assert server.paths == ["/infnet.zip"]


def test_tampered_archive_is_refused_and_nothing_left(
    tmp_path: Path, server: Server, picked: dict[str, str]
) -> None:
    mdir = _covid_setup(tmp_path, server, picked, tamper=True)
    parent = tmp_path / "data"
    with pytest.raises(DataError, match=r"1 of 4 files .* missing or corrupt") as info:
        fetch("mini", dest=parent / "mini", manifest_dir=mdir)
    assert "\n" not in str(info.value)
    _assert_clean(parent)


@pytest.mark.parametrize("evil", ["../evil", "/abs/evil", PREFIX + "../../evil"])
def test_zip_with_escaping_member_is_refused(tmp_path: Path, server: Server, evil: str) -> None:
    _zip(server.root / "evil.zip", {PREFIX + "ok.txt": b"ok", evil: b"pwned"})
    mdir = _manifest(
        tmp_path / "m",
        "evil",
        url=server.url("evil.zip"),
        filename="evil.zip",
        archive="zip",
        member_prefix=PREFIX,
    )
    parent = tmp_path / "data"
    with pytest.raises(DataError, match="refusing"):
        fetch("evil", dest=parent / "evil", manifest_dir=mdir)
    _assert_clean(parent)
    assert not (tmp_path / "evil").exists()


def test_tar_with_symlink_is_refused(tmp_path: Path, server: Server) -> None:
    with tarfile.open(server.root / "link.tar", "w") as tf:
        info = tarfile.TarInfo("top/data/ok.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"ok"))
        link = tarfile.TarInfo("top/data/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    mdir = _manifest(
        tmp_path / "m",
        "link",
        url=server.url("link.tar"),
        filename="link.tar",
        archive="tar",
        member_prefix="top/data/",
        strip_components=2,
    )
    parent = tmp_path / "data"
    with pytest.raises(DataError, match="link"):
        fetch("link", dest=parent / "link", manifest_dir=mdir)
    _assert_clean(parent)


@pytest.mark.parametrize(
    ("archive", "mode"), [("zip", ""), ("tar", "gz"), ("tar", "bz2"), ("tar", "xz")]
)
def test_a_corrupt_compressed_archive_is_one_line_and_nothing_left(
    tmp_path: Path, server: Server, archive: str, mode: str
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB that compresses, so the damage hits the stream
    path = server.root / f"bad.{archive}"
    if archive == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("top/data/a.bin", data)
    else:
        with tarfile.open(path, f"w:{mode}") as tf:
            info = tarfile.TarInfo("top/data/a.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(64)  # no published sha256: only unpacking can tell
    path.write_bytes(bytes(raw))
    mdir = _manifest(
        tmp_path / "m", "bad", url=server.url(path.name), filename=path.name,
        archive=archive, member_prefix="top/data/",
    )  # fmt: skip
    parent = tmp_path / "data"
    with pytest.raises(DataError, match=f"not a valid {archive} file") as info:
        fetch("bad", dest=parent / "bad", manifest_dir=mdir)
    assert "\n" not in str(info.value)
    _assert_clean(parent)


def test_single_file_wrong_size_is_refused_and_deleted(tmp_path: Path, server: Server) -> None:
    (server.root / "blob.bin").write_bytes(b"0123456789")
    mdir = _manifest(tmp_path / "m", "blob", url=server.url("blob.bin"), size=11)
    parent = tmp_path / "data"
    with pytest.raises(DataError, match="has 10 bytes, expected 11; the bad download was deleted"):
        fetch("blob", dest=parent / "blob", manifest_dir=mdir)
    _assert_clean(parent)


def test_single_file_wrong_sha256_is_refused(tmp_path: Path, server: Server) -> None:
    (server.root / "blob.bin").write_bytes(b"0123456789")
    mdir = _manifest(tmp_path / "m", "blob", url=server.url("blob.bin"), sha256="0" * 64)
    parent = tmp_path / "data"
    with pytest.raises(DataError) as info:
        fetch("blob", dest=parent / "blob", manifest_dir=mdir)
    got = sha256_file(server.root / "blob.bin")
    assert f"has sha256 {got}, expected {'0' * 64}" in str(info.value)
    _assert_clean(parent)


def test_unpublished_sha256_is_recorded_then_enforced(tmp_path: Path, server: Server) -> None:
    (server.root / "blob.bin").write_bytes(b"0123456789")
    mdir = _manifest(tmp_path / "m", "blob", url=server.url("blob.bin"), size=10)
    dest = tmp_path / "data" / "blob"
    fetch("blob", dest=dest, manifest_dir=mdir)
    digest = sha256_file(server.root / "blob.bin")
    assert read_checksums(dest / SUMS_NAME) == {"blob.bin": digest}
    fetch("blob", dest=dest, manifest_dir=mdir)
    assert len(server.paths) == 1
    (dest / "blob.bin").write_bytes(b"0123456780")
    with pytest.raises(DataError, match="exists but is not a verified copy"):
        fetch("blob", dest=dest, manifest_dir=mdir)
    assert len(server.paths) == 1


def test_unreachable_server_gives_one_line_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/blob.bin"
    mdir = _manifest(tmp_path / "m", "blob", url=url)
    parent = tmp_path / "data"
    with pytest.raises(DataError) as info:
        fetch("blob", dest=parent / "blob", manifest_dir=mdir)
    message = str(info.value)
    assert message.startswith(f"could not download blob from {url} (")
    assert "dataset.root=PATH" in message and "\n" not in message
    _assert_clean(parent)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no_such_dataset"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown dataset") and "\n" not in err
    url = f"http://127.0.0.1:{_closed_port()}/P0DTC2.fasta"
    assert main(["spike", "--dest", str(tmp_path / "spike"), "--url", url]) == 1
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err_lines) == 1 and "dataset.root" in err_lines[0]
    assert not (tmp_path / "spike").exists()


def test_cli_fetches_spike_from_mirror(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _need(SPIKE)
    (server.root / "P0DTC2.fasta").write_bytes(SPIKE.read_bytes())
    dest = tmp_path / "spike"
    assert main(["spike", "--dest", str(dest), "--url", server.url("P0DTC2.fasta")]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    assert (dest / "P0DTC2_spike_uniprot.fasta").read_bytes() == SPIKE.read_bytes()


def test_the_papers_code_is_fetched_from_a_mirror_and_a_changed_one_refused(
    tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from usecases.covid_ct.original.code import locate_code

    original = ORIGINAL_CODE / "TV_UNET.py"
    require(original.is_file(), NO_ORIGINAL)
    (server.root / "changed.py").write_bytes(original.read_bytes() + b"\n")
    bad = tmp_path / "bad"
    assert main(["tv_unet_12031fa", "--dest", str(bad), "--url", server.url("changed.py")]) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(errors) == 1 and "sha256" in errors[0] and not bad.exists()

    (server.root / "TV_UNET.py").write_bytes(original.read_bytes())
    dest = tmp_path / "cache-base" / "tv_unet_12031fa"  # where a run looks for the fetched copy
    assert main(["tv_unet_12031fa", "--dest", str(dest), "--url", server.url("TV_UNET.py")]) == 0
    assert (dest / "TV_UNET.py").read_bytes() == original.read_bytes()
    code = locate_code(None)  # the verified copy in the cache: no second download
    assert Path(code["file"]) == (dest / "TV_UNET.py").resolve()
    assert server.paths == ["/changed.py", "/TV_UNET.py"]
