"""Hub-compatible servers on 127.0.0.1 for the tests.

- `Olah`: the `olah` Hub mirror (a server we did not write) in offline mode, serving local
  git repositories as Hub model repos, with branches, tags and commits as revisions. The
  real `huggingface_hub` client downloads from it.
- `UploadHub`: the endpoints that `huggingface_hub` calls to create a repo and commit files
  (`/api/repos/create`, `/preupload`, `/commit`, as NDJSON), committing into the same git
  repositories that `Olah` serves. olah has no upload endpoints.
- `BrokenHub`: a server that answers 500 to everything, or never answers at all.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import yaml

GIT = ["git", "-c", "user.name=cvae tests", "-c", "user.email=tests@localhost"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def model_repo(mirrors: Path, repo_id: str) -> Path:
    """The git repository behind a Hub model repo, created (empty, branch main) if missing."""
    path = mirrors / "models" / repo_id
    if not (path / ".git").exists():
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")
    return path


def commit_files(repo: Path, files: dict[str, bytes], message: str, branch: str = "main") -> str:
    """Write files into a branch of a repo and commit them; return the commit's sha."""
    if not _succeeds(repo, "rev-parse", "--verify", "-q", "HEAD"):
        git(repo, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
    elif _succeeds(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}"):
        git(repo, "checkout", "-q", branch)
    else:
        git(repo, "checkout", "-q", "-b", branch)
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _succeeds(repo: Path, *args: str) -> bool:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True).returncode == 0


class Olah:
    """The olah mirror in offline mode, serving the git repos under `mirrors`."""

    def __init__(self, mirrors: Path, workdir: Path):
        self.mirrors, self.port = mirrors, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "olah.toml"
        netloc = f"127.0.0.1:{self.port}"
        config.write_text(f"""[basic]
host = "127.0.0.1"
port = {self.port}
mirror-scheme = "http"
mirror-netloc = "{netloc}"
mirror-lfs-netloc = "{netloc}"
repos-path = "{workdir / 'cache'}"
mirrors-path = ["{mirrors}"]
metadata-cache-ttl = 0

[accessibility]
offline = true
""")
        self.log = open(workdir / "olah.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "olah.server", "-c", str(config)],
                                        cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited: {(workdir / 'olah.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)
                return
            except OSError as err:  # connection refused until it listens; HTTP errors are fine
                if getattr(err, "code", None):
                    return
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("olah did not start within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class _UploadHandler(BaseHTTPRequestHandler):
    server: _UploadServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = unquote(self.path.split("?")[0])
        self.server.requests.append(("POST", path))
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            model_repo(self.server.mirrors, repo_id)
            return self._json(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":  # the model card's front matter must be valid YAML
            content = json.loads(body)["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
            try:
                yaml.safe_load(match.group(1) if match else "")
            except yaml.YAMLError as err:
                return self._json(400, {"errors": [{"message": str(err)}], "warnings": []})
            return self._json(200, {"errors": [], "warnings": []})
        if path.startswith("/api/models/") and "/preupload/" in path:
            files = json.loads(body)["files"]
            # Every file as a regular git blob (the Hub sends large ones to LFS storage).
            return self._json(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if path.startswith("/api/models/") and "/commit/" in path:
            repo_id, revision = path[len("/api/models/"):].split("/commit/")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(item["value"] for item in lines if item["key"] == "header")
            files = {item["value"]["path"]: base64.b64decode(item["value"]["content"])
                     for item in lines if item["key"] == "file"}
            repo = model_repo(self.server.mirrors, repo_id)
            with self.server.lock:
                sha = commit_files(repo, files, header["summary"], revision)
            return self._json(200, {"commitUrl": f"{self.server.url}/{repo_id}/commit/{sha}",
                                    "commitOid": sha, "success": True})
        self._json(404, {"error": f"not served here: POST {path}"})

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(("GET", self.path))
        self._json(404, {"error": f"not served here: GET {self.path}"})


class _UploadServer(ThreadingHTTPServer):
    mirrors: Path
    url: str
    requests: list[tuple[str, str]]
    lock: threading.Lock


class UploadHub:
    """The upload half of the Hub API, committing into the git repos under `mirrors`."""

    def __init__(self, mirrors: Path):
        self.httpd = _UploadServer(("127.0.0.1", 0), _UploadHandler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.httpd.mirrors, self.httpd.url = mirrors, self.url
        self.httpd.requests, self.httpd.lock = [], threading.Lock()
        self.requests = self.httpd.requests
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _BrokenHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        if self.server.mode == "hang":  # type: ignore[attr-defined]
            time.sleep(30)
            return
        self.send_response(500)
        self.send_header("Content-Length", "21")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"Internal Server Error")

    do_GET = do_HEAD = do_POST = _answer


class BrokenHub:
    """A server that answers every request with 500 (`mode="500"`) or never (`"hang"`)."""

    def __init__(self, mode: str):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenHandler)
        self.httpd.daemon_threads = True
        self.httpd.mode = mode  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
