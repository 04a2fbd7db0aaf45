"""A tiny local stand-in for the Hugging Face Hub's HTTP API (there is no Hub here): serves model directories
by repo id, records every request (path, revision, Authorization) so tests can check what was asked."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _handler(repos: dict[str, Path], requests: list[dict[str, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _route(self) -> None:
            path = unquote(urlparse(self.path).path)
            requests.append({"method": self.command, "path": path, "auth": self.headers.get("Authorization", "")})
            if path.startswith("/api/models/"):
                return self._model_info(path.removeprefix("/api/models/"))
            for repo, directory in repos.items():
                prefix = f"/{repo}/resolve/"
                if path.startswith(prefix):
                    _, _, filename = path.removeprefix(prefix).partition("/")
                    return self._file(directory / filename)
            self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"})

        def _model_info(self, rest: str) -> None:
            repo = next((r for r in repos if rest == r or rest.startswith(r + "/")), None)
            if repo is None:
                return self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"})
            files = sorted(p.relative_to(repos[repo]).as_posix() for p in repos[repo].rglob("*") if p.is_file())
            if rest.startswith(f"{repo}/tree/"):
                body = [
                    _tree_entry(repos[repo], f)
                    for f in files
                    if f.startswith(rest.split("/tree/", 1)[1].partition("/")[2])
                ]
            else:
                body = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files], "tags": []}
            self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def _file(self, path: Path) -> None:
            if not path.is_file():
                return self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            body = path.read_bytes()
            etag = f'"{hashlib.sha256(body).hexdigest()}"'
            self._send(200, body, {"ETag": etag, "X-Repo-Commit": COMMIT, "Content-Type": "application/octet-stream"})

        do_GET = do_HEAD = _route

    return Handler


def _tree_entry(directory: Path, name: str) -> dict[str, object]:
    data = (directory / name).read_bytes()
    return {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}


@contextmanager
def fake_hub(repos: dict[str, Path]) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Serve `repos` (repo id -> model directory) on a loopback port; yield (endpoint URL, request log)."""
    requests: list[dict[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(repos, requests))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
