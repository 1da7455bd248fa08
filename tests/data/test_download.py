"""download_cifar against a local HTTP server serving tiny archives built by the tests."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from scalefree.data import DatasetError, download_cifar, load_data, read_cifar
from scalefree.data import loader as loader_module
from scalefree.errors import UsageError
from tests.data.cifar_fixture import make_fake_cifar


@dataclass
class Server:
    """What the local server serves: path -> bytes; paths in ``truncate`` send half the body
    while announcing the full Content-Length, then hang up (a dropped connection)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def add(self, path: str, blob: bytes) -> tuple[str, str]:
        """Serve ``blob`` at ``path``; return (url, md5)."""
        self.files[path] = blob
        return self.url + path, hashlib.md5(blob).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state = self.server_state
        state.requests.append(self.path)
        blob = state.files.get(self.path)
        if blob is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        if self.path in state.truncate:
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(blob)

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(monkeypatch) -> Iterator[Server]:
    # A proxy from the environment must not intercept requests to localhost.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    state = Server()
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A short poll interval keeps shutdown() (which waits for one poll) fast.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


@functools.cache
def _archive(name: str) -> bytes:
    """An archive in the official layout (a few images), like cifar-10-python.tar.gz."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_fake_cifar(tmp, name, n_train_per_batch=3, n_test=4)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        return buf.getvalue()


def _file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _visible_and_hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.parametrize(
    "name,folder", [("CIFAR10", "cifar-10-batches-py"), ("CIFAR100", "cifar-100-python")]
)
def test_download_extracts_official_layout(
    server: Server, tmp_path: Path, name: str, folder: str
) -> None:
    url, md5 = server.add(f"/{name}.tar.gz", _archive(name))
    root = tmp_path / "data"
    got = download_cifar(name, root, url=url, md5=md5, progress=False)
    assert got == root / folder
    assert _visible_and_hidden(root) == [folder]  # no temporary folder or archive left
    raw = read_cifar(name, root)
    assert len(raw.train_images) == (15 if name == "CIFAR10" else 3)
    assert len(raw.test_images) == 4


def test_present_dataset_is_not_downloaded_again(server: Server, tmp_path: Path) -> None:
    url, md5 = server.add("/c10.tar.gz", _archive("CIFAR10"))
    download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
    download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
    assert server.requests == ["/c10.tar.gz"]


def test_progress_bar_goes_to_stderr(server: Server, tmp_path: Path, capsys) -> None:
    url, md5 = server.add("/c10.tar.gz", _archive("CIFAR10"))
    download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=True)
    assert capsys.readouterr().out == ""


def test_md5_mismatch_leaves_nothing(server: Server, tmp_path: Path) -> None:
    url, _ = server.add("/c10.tar.gz", _archive("CIFAR10"))
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="MD5 mismatch") as info:
        download_cifar("CIFAR10", root, url=url, md5="0" * 32, progress=False)
    assert url in str(info.value)
    assert _visible_and_hidden(root) == []


def test_default_md5_is_the_official_one(server: Server, tmp_path: Path) -> None:
    url, _ = server.add("/c10.tar.gz", _archive("CIFAR10"))
    with pytest.raises(DatasetError, match="expected c58f30108f718f92721af3b95e74349a"):
        download_cifar("CIFAR10", tmp_path, url=url, progress=False)


def test_partial_download_leaves_no_folder(server: Server, tmp_path: Path) -> None:
    url, md5 = server.add("/c10.tar.gz", _archive("CIFAR10"))
    server.truncate.add("/c10.tar.gz")
    with pytest.raises(DatasetError, match="incomplete"):
        download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
    assert _visible_and_hidden(tmp_path) == []


def test_http_error_is_dataset_error(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="could not download .*/missing.tar.gz"):
        download_cifar("CIFAR10", tmp_path, url=server.url + "/missing.tar.gz", progress=False)
    assert _visible_and_hidden(tmp_path) == []


def test_unreachable_host_is_dataset_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    with pytest.raises(DatasetError, match="could not download"):
        download_cifar("CIFAR10", tmp_path, url="http://127.0.0.1:9/x.tar.gz", progress=False)


def _unsafe_members() -> dict[str, list[tuple[tarfile.TarInfo, bytes | None]]]:
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return {
        "dotdot": [_file_member("cifar-10-batches-py/../../evil", b"x")],
        "absolute": [_file_member("/tmp/scalefree-evil-test-file", b"x")],
        "symlink": [(link, None)],
        "outside": [_file_member("other/file", b"x")],
    }


@pytest.mark.parametrize(
    "kind,why",
    [
        ("dotdot", "a '..' component"),
        ("absolute", "an absolute path"),
        ("symlink", "a link or special file"),
        ("outside", "outside cifar-10-batches-py/"),
    ],
)
def test_unsafe_archive_is_rejected(server: Server, tmp_path: Path, kind: str, why: str) -> None:
    blob = _tar_gz(_unsafe_members()[kind])
    url, md5 = server.add("/evil.tar.gz", blob)
    root = tmp_path / "a" / "data"
    with pytest.raises(DatasetError, match=f"refusing to extract .* is {why}"):
        download_cifar("CIFAR10", root, url=url, md5=md5, progress=False)
    assert _visible_and_hidden(root) == []
    assert _visible_and_hidden(tmp_path / "a") == ["data"]  # nothing escaped upwards
    assert not Path("/tmp/scalefree-evil-test-file").exists()


def test_archive_without_required_files(server: Server, tmp_path: Path) -> None:
    blob = _tar_gz([_file_member("cifar-10-batches-py/readme.html", b"hi")])
    url, md5 = server.add("/thin.tar.gz", blob)
    with pytest.raises(DatasetError, match="has no cifar-10-batches-py/data_batch_1"):
        download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
    assert _visible_and_hidden(tmp_path) == []


def test_not_a_tarball(server: Server, tmp_path: Path) -> None:
    url, md5 = server.add("/html.tar.gz", b"<html>captive portal</html>")
    with pytest.raises(DatasetError, match="not a readable .tar.gz"):
        download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
    assert _visible_and_hidden(tmp_path) == []


def test_incomplete_existing_folder_is_not_touched(server: Server, tmp_path: Path) -> None:
    folder = make_fake_cifar(tmp_path, "CIFAR10", n_train_per_batch=2, n_test=2)
    (folder / "data_batch_5").unlink()
    url, md5 = server.add("/c10.tar.gz", _archive("CIFAR10"))
    with pytest.raises(DatasetError, match="exists but is incomplete.*delete it"):
        download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
    assert server.requests == []
    assert {p.name for p in folder.iterdir()} == {
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "test_batch",
        "batches.meta",
    }


def test_load_data_with_download(server: Server, tmp_path: Path, monkeypatch) -> None:
    url, md5 = server.add("/c10.tar.gz", _archive("CIFAR10"))
    monkeypatch.setattr(
        loader_module,
        "download_cifar",
        functools.partial(download_cifar, url=url, md5=md5, progress=False),
    )
    bundle = load_data("CIFAR10", tmp_path / "fresh", download=True)
    assert len(bundle.train_images) == 15 and bundle.train_images.dtype == torch.uint8


def test_concurrent_downloads_both_succeed(server: Server, tmp_path: Path) -> None:
    url, md5 = server.add("/c10.tar.gz", _archive("CIFAR10"))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            download_cifar("CIFAR10", tmp_path, url=url, md5=md5, progress=False)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert _visible_and_hidden(tmp_path) == ["cifar-10-batches-py"]
    assert len(read_cifar("CIFAR10", tmp_path).train_images) == 15


def test_unwritable_dataroot(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DatasetError, match="writable --dataroot"):
        download_cifar("CIFAR10", blocker / "data", url="http://127.0.0.1:9/x", progress=False)


def test_unknown_name() -> None:
    with pytest.raises(UsageError, match="unknown CIFAR dataset 'MNIST'"):
        download_cifar("MNIST", ".")
