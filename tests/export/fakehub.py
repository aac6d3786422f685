"""A loopback fake of the few Hugging Face Hub HTTP endpoints that ``huggingface_hub`` calls to create
a repository, commit files (as regular, base64-encoded blobs) and download a snapshot. Tests point
``HF_ENDPOINT`` at it: nothing leaves the machine."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml

REPO = r"(?P<repo>[^/]+/[^/]+)"


class FakeHub:
    """``with FakeHub() as hub:`` serves on ``hub.url``; ``hub.repos[repo]`` = {path: bytes}."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[str] = []
        self.cards: list[str] = []  # the YAML sent to /api/validate-yaml
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
                self.send_response(code)
                for k, v in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, obj, code: int = 200) -> None:
                self._send(code, json.dumps(obj).encode())

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:  # noqa: N802
                path = urlparse(self.path).path
                hub.requests.append(f"POST {path}")
                body = self._body()
                if path == "/api/repos/create":
                    req = json.loads(body)
                    repo = f"{req.get('organization') or 'user'}/{req['name']}"
                    hub.repos.setdefault(repo, {})
                    return self._json({"url": f"{hub.url}/{repo}", "name": repo})
                if path == "/api/validate-yaml":  # the model card's front matter: it must parse as a mapping
                    hub.cards.append(content := json.loads(body)["content"])
                    front = re.match(r"---\n(.*?)\n---\n", content, re.S)
                    ok = front is not None and isinstance(yaml.safe_load(front[1]), dict)
                    return self._json({"errors": [] if ok else [{"message": "not a mapping"}], "warnings": []},
                                      200 if ok else 400)
                if m := re.fullmatch(rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", path):
                    files = json.loads(body)["files"]
                    return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                 for f in files]})
                if m := re.fullmatch(rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", path):
                    repo = m["repo"]
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            v = item["value"]
                            hub.repos.setdefault(repo, {})[v["path"]] = base64.b64decode(v["content"])
                    sha = hashlib.sha1(repr(sorted(hub.repos[repo].items())).encode()).hexdigest()
                    hub.commits[repo] = sha
                    return self._json({"commitUrl": f"{hub.url}/{repo}/commit/{sha}", "commitOid": sha})
                return self._json({"error": f"fake hub: no POST {path}"}, 404)

            def _repo(self, repo: str):
                if repo not in hub.commits:
                    self._send(404, b'{"error": "Repository not found"}',
                               {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"})
                    return None
                return hub.repos[repo]

            def _get(self, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{'HEAD' if head else 'GET'} {path}")
                if m := re.fullmatch(rf"/api/models/{REPO}(/revision/(?P<rev>[^/]+))?", path):
                    if (files := self._repo(m["repo"])) is None:
                        return
                    return self._json({"id": m["repo"], "modelId": m["repo"], "sha": hub.commits[m["repo"]],
                                       "private": False, "siblings": [{"rfilename": p} for p in sorted(files)]})
                if m := re.fullmatch(rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(/.*)?", path):
                    if (files := self._repo(m["repo"])) is None:
                        return
                    return self._json([{"type": "file", "path": p, "size": len(b),
                                        "oid": hashlib.sha1(b).hexdigest()} for p, b in sorted(files.items())])
                if m := re.fullmatch(rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path):
                    if (files := self._repo(m["repo"])) is None:
                        return
                    if m["file"] not in files:
                        return self._send(404, b"{}", {"Content-Type": "application/json", "X-Error-Code": "EntryNotFound"})
                    data = files[m["file"]]
                    headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": hub.commits[m["repo"]],
                               "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
                    return self._send(200, data, headers, head=head)
                return self._json({"error": f"fake hub: no GET {path}"}, 404)

            def do_GET(self) -> None:  # noqa: N802
                self._get(head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._get(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
