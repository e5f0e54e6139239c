"""A Hub-compatible HTTP server on 127.0.0.1 for the tests: the endpoints huggingface_hub calls.

Checked against the installed client (huggingface_hub 2.x, ``HF_HUB_DISABLE_XET=1``):

- ``POST /api/repos/create``                             create_repo (409 when it exists)
- ``GET  /api/models/{repo}[/revision/{rev}]``            repo_info (snapshot_download resolves rev -> sha)
- ``GET  /api/models/{repo}/tree/{rev}[/{path}]``         list_repo_tree (snapshot_download's file list)
- ``POST /api/models/{repo}/paths-info/{rev}``            get_paths_info
- ``GET  /api/models/{repo}/refs``                        list_repo_refs
- ``POST /api/models/{repo}/preupload/{rev}``             create_commit: regular or LFS upload mode
- ``POST /api/validate-yaml``                             create_commit checks README.md's front matter
- ``POST /{repo}.git/info/lfs/objects/batch``             LFS batch: where to PUT each object
- ``PUT  /lfs-upload/{oid}``, ``POST /{repo}.git/info/lfs/objects/verify``
- ``POST /api/models/{repo}/commit/{rev}``                the NDJSON commit
- ``POST /api/models/{repo}/tag/{rev}``, ``DELETE /api/models/{repo}/tag/{tag}``
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``               X-Repo-Commit, ETag, X-Linked-Etag/-Size

Errors carry the ``X-Error-Code`` header (RepoNotFound, RevisionNotFound, EntryNotFound) that
the client maps to its exception classes. Writes need a token the server knows; reading a
private repository does too. The server keeps every revision, so pinned commits stay
readable after later pushes, and it can be told to tamper with a stored file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".png")
DATE = "2024-01-01T00:00:00.000Z"


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass
class StoredFile:
    size: int
    content: Optional[bytes] = None  # regular (git) files
    lfs_oid: Optional[str] = None  # LFS files: the bytes live in the server's LFS store

    @property
    def blob_id(self) -> str:
        return git_blob_sha(self.content if self.lfs_oid is None else lfs_pointer(self.lfs_oid, self.size))

    @property
    def etag(self) -> str:
        return self.lfs_oid or self.blob_id


@dataclass
class Commit:
    sha: str
    parent: Optional[str]
    message: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_id: str
    private: bool
    owner: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Optional[str]:
        for prefix, table in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if revision.startswith(prefix):
                return table.get(revision[len(prefix):])
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if re.fullmatch(r"[0-9a-f]{40}", revision) and revision in self.commits:
            return revision
        return None


class HubState:
    """Everything the server knows, behind one lock (the server is threaded)."""

    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)  # token -> user name
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.pending: set[str] = set()  # oids announced by an authorized LFS batch call
        self.requests: list[tuple[str, str]] = []  # (method, path): never headers, so never a token
        self.lock = threading.RLock()
        self._counter = 0

    def new_commit(self, repo: Repo, parent: Optional[str], message: str, files: dict[str, StoredFile]) -> str:
        self._counter += 1
        digest = hashlib.sha1(f"{repo.repo_id}:{parent}:{message}:{self._counter}".encode())
        for path in sorted(files):
            digest.update(f"{path}:{files[path].etag}".encode())
        sha = digest.hexdigest()
        repo.commits[sha] = Commit(sha=sha, parent=parent, message=message, files=files)
        return sha

    def file_bytes(self, stored: StoredFile) -> bytes:
        return stored.content if stored.lfs_oid is None else self.lfs[stored.lfs_oid]

    def tamper(self, repo_id: str, revision: str, path: str, data: bytes) -> None:
        """Replace a stored file's bytes but keep its oid/ETag: what a corrupted mirror would serve."""
        with self.lock:
            repo = self.repos[repo_id]
            stored = repo.commits[repo.resolve(revision)].files[path]
            if stored.lfs_oid is not None:
                self.lfs[stored.lfs_oid] = data
            else:
                stored.content = data
            stored.size = len(data)


class ServerError(Exception):
    def __init__(self, status: int, message: str, code: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


REPO = r"(?P<repo>[^/]+/[^/]+)"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's httpx session expects
    server: "HubHTTPServer"

    # ---------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the test output stays clean; requests are recorded in HubState.requests instead

    def _body(self) -> bytes:
        """The request's body, read once: an error answered before a handler read it still drains it
        (on a keep-alive connection the unread bytes would be parsed as the next request)."""
        if self._request_body is None:
            self._request_body = self._read_body()
        return self._request_body

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: Optional[dict] = None):
        self._send(status, json.dumps(data).encode(), headers)

    def _user(self) -> Optional[str]:
        """The authenticated user; a token the server does not know is a 401 straight away."""
        auth = self.headers.get("Authorization") or ""
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        user = self.server.state.tokens.get(token)
        if user is None:
            raise ServerError(401, "Invalid credentials in Authorization header")
        return user

    def _require_user(self) -> str:
        user = self._user()
        if user is None:
            raise ServerError(401, "Invalid username or password.")
        return user

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        user = self._require_user() if write else self._user()
        repo = self.server.state.repos.get(repo_id)
        if repo is None or (repo.private and user is None):
            # like the real Hub: a private repo is indistinguishable from a missing one without a token
            raise ServerError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        if write and user != repo.owner:
            raise ServerError(403, "You don't have the rights to write to this repository")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        sha = repo.resolve(unquote(revision))
        if sha is None:
            raise ServerError(404, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
        return repo.commits[sha]

    def _dispatch(self) -> None:
        self._request_body: Optional[bytes] = None  # this request's, once read (a connection carries many)
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        state = self.server.state
        with state.lock:
            state.requests.append((self.command, url.path))
        for method, pattern, handler in ROUTES:
            if method == self.command or (method == "GET" and self.command == "HEAD"):
                match = re.fullmatch(pattern, url.path)
                if match:
                    try:
                        with state.lock:
                            handler(self, **match.groupdict())
                    except ServerError as exc:
                        self._body()  # drain what the handler did not read
                        headers = {"X-Error-Message": exc.message, **exc.headers}
                        if exc.code:
                            headers["X-Error-Code"] = exc.code
                        self._json(exc.status, {"error": exc.message}, headers)
                    return
        self._body()
        self._json(404, {"error": f"no route for {self.command} {url.path}"})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    # ---------------------------------------------------------------- repos

    def create_repo(self) -> None:
        user = self._require_user()
        payload = json.loads(self._body() or b"{}")
        owner = payload.get("organization") or user
        if owner != user:
            raise ServerError(403, f"You don't have the rights to create a repository under '{owner}'")
        repo_id = f"{owner}/{payload['name']}"
        state = self.server.state
        if repo_id in state.repos:
            # the real Hub's 409 carries the url too: create_repo(exist_ok=True) reads it
            self._json(409, {"error": "You already created this model repo", "url": f"{self.server.url}/{repo_id}"},
                       {"X-Error-Message": "You already created this model repo"})
            return
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_id=repo_id, private=private, owner=owner)
        first = state.new_commit(repo, None, "initial commit",
                                 {".gitattributes": StoredFile(size=len(GITATTRIBUTES), content=GITATTRIBUTES)})
        repo.branches["main"] = first
        state.repos[repo_id] = repo
        self._json(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def repo_info(self, repo: str, rev: Optional[str] = None) -> None:
        r = self._repo(repo)
        commit = self._commit(r, rev or "main")
        self._json(200, {
            "_id": repo, "id": repo, "modelId": repo, "author": r.owner, "sha": commit.sha, "private": r.private,
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [], "library_name": "vaezoo",
            "lastModified": DATE, "createdAt": DATE,
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
        })

    def _entry(self, path: str, stored: StoredFile) -> dict:
        entry = {"type": "file", "oid": stored.blob_id, "size": stored.size, "path": path}
        if stored.lfs_oid is not None:
            entry["lfs"] = {"oid": stored.lfs_oid, "size": stored.size,
                            "pointerSize": len(lfs_pointer(stored.lfs_oid, stored.size))}
        return entry

    def tree(self, repo: str, rev: str, path: Optional[str] = None) -> None:
        commit = self._commit(self._repo(repo), rev)
        prefix = (unquote(path).strip("/") + "/") if path else ""
        recursive = self.query.get("recursive", "false").lower() in ("1", "true")
        entries, folders = [], set()
        for p in sorted(commit.files):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entries.append(self._entry(p, commit.files[p]))
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)]
        self._json(200, entries)

    def paths_info(self, repo: str, rev: str) -> None:
        commit = self._commit(self._repo(repo), rev)
        body = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body).get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        self._json(200, [self._entry(p, commit.files[p]) for p in paths if p in commit.files])

    def refs(self, repo: str) -> None:
        r = self._repo(repo)
        self._json(200, {
            "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in r.branches.items()],
            "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": s} for t, s in r.tags.items()],
            "converts": [],
        })

    def validate_yaml(self) -> None:
        content = json.loads(self._body()).get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        errors = []
        if match:
            try:
                meta = yaml.safe_load(match.group(1)) or {}
                for item in meta.get("model-index", []) or []:
                    for result in item.get("results", []):
                        for metric in result.get("metrics", []):
                            if not isinstance(metric.get("value"), (int, float)) or "type" not in metric:
                                errors.append({"message": f"model-index metric needs 'type' and a number: {metric}"})
            except yaml.YAMLError as exc:
                errors.append({"message": f"invalid YAML: {exc}"})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    # ---------------------------------------------------------------- upload

    def preupload(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        commit = self._commit(r, rev)
        files = []
        for f in json.loads(self._body())["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or b"\0" in sample
            existing = commit.files.get(f["path"])
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": existing.etag if existing else None})
        self._json(200, {"files": files, "commitOid": commit.sha})

    def lfs_batch(self, repo: str) -> None:
        self._repo(repo, write=True)
        payload = json.loads(self._body())
        state = self.server.state
        objects = []
        for obj in payload["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in state.lfs:
                state.pending.add(obj["oid"])
                item["actions"] = {
                    "upload": {"href": f"{self.server.url}/lfs-upload/{obj['oid']}"},
                    "verify": {"href": f"{self.server.url}/{repo}.git/info/lfs/objects/verify"},
                }
            objects.append(item)
        self._json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                   {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_put(self, oid: str) -> None:
        # like a pre-signed storage URL: no token, but only for objects an authorized batch call announced
        state = self.server.state
        data = self._body()
        if oid not in state.pending:
            raise ServerError(403, "upload URL is not valid")
        if hashlib.sha256(data).hexdigest() != oid:
            raise ServerError(400, "the uploaded bytes do not match the oid")
        state.lfs[oid] = data
        state.pending.discard(oid)
        self._send(200)

    def lfs_verify(self, repo: str) -> None:
        self._repo(repo, write=True)
        obj = json.loads(self._body())
        if obj["oid"] not in self.server.state.lfs:
            raise ServerError(404, f"object {obj['oid']} was not uploaded")
        self._json(200, {})

    def commit(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        branch = unquote(rev)
        if branch not in r.branches:
            raise ServerError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        parent = r.commits[r.branches[branch]]
        files = dict(parent.files)
        message = ""
        state = self.server.state
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
                if value.get("parentCommit") and value["parentCommit"] != parent.sha:
                    raise ServerError(412, "parent commit is not the head of the branch")
            elif key == "file":
                content = base64.b64decode(value["content"])
                files[value["path"]] = StoredFile(size=len(content), content=content)
            elif key == "lfsFile":
                if value["oid"] not in state.lfs:
                    raise ServerError(422, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = StoredFile(size=len(state.lfs[value["oid"]]), lfs_oid=value["oid"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:
                raise ServerError(400, f"unsupported commit operation '{key}'")
        sha = state.new_commit(r, parent.sha, message, files)
        r.branches[branch] = sha
        self._json(200, {"commitUrl": f"{self.server.url}/{repo}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None, "success": True})

    def create_tag(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        commit = self._commit(r, rev)
        tag = json.loads(self._body())["tag"]
        if tag in r.tags:
            raise ServerError(409, f"Tag {tag} already exists")
        r.tags[tag] = commit.sha
        self._json(200, {})

    def delete_tag(self, repo: str, tag: str) -> None:
        r = self._repo(repo, write=True)
        if r.tags.pop(unquote(tag), None) is None:
            raise ServerError(404, f"Invalid rev id: {unquote(tag)}", "RevisionNotFound")
        self._json(200, {})

    # ---------------------------------------------------------------- download

    def resolve(self, repo: str, rev: str, path: str) -> None:
        commit = self._commit(self._repo(repo), rev)
        path = unquote(path)
        stored = commit.files.get(path)
        if stored is None:
            raise ServerError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        data = self.server.state.file_bytes(stored)
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{stored.etag}"', "Accept-Ranges": "bytes"}
        if stored.lfs_oid is not None:
            headers.update({"X-Linked-Etag": f'"{stored.lfs_oid}"', "X-Linked-Size": str(len(data))})
        self._send(200, data, headers, content_type="application/octet-stream")


ROUTES = [
    ("POST", r"/api/repos/create", Handler.create_repo),
    ("POST", r"/api/validate-yaml", Handler.validate_yaml),
    ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", Handler.tree),
    ("POST", rf"/api/models/{REPO}/paths-info/(?P<rev>[^/]+)", Handler.paths_info),
    ("GET", rf"/api/models/{REPO}/refs", Handler.refs),
    ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", Handler.preupload),
    ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", Handler.commit),
    ("POST", rf"/api/models/{REPO}/tag/(?P<rev>[^/]+)", Handler.create_tag),
    ("DELETE", rf"/api/models/{REPO}/tag/(?P<tag>[^/]+)", Handler.delete_tag),
    ("GET", rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?", Handler.repo_info),
    ("POST", rf"/{REPO}\.git/info/lfs/objects/batch", Handler.lfs_batch),
    ("POST", rf"/{REPO}\.git/info/lfs/objects/verify", Handler.lfs_verify),
    ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", Handler.lfs_put),
    ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", Handler.resolve),
]


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tokens: dict[str, str]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = HubState(tokens)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "HubHTTPServer":
        self._thread = threading.Thread(target=self.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


if __name__ == "__main__":  # a manual run: python tests/hub_server.py
    server = HubHTTPServer({"hf_test_token": "alice"}).start()
    print(f"fake Hub at {server.url} (token hf_test_token for user alice); Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


def point_client_at(monkeypatch, url: str, home, *, offline: bool = False, token: Optional[str] = None) -> None:
    """Point an already-imported huggingface_hub at ``url`` with its cache under ``home``.

    The client reads HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE and HF_HUB_DISABLE_XET into
    ``huggingface_hub.constants`` at import time, so the environment alone does not reach
    it once imported: both are set, the environment for subprocesses and call-time reads
    (HF_TOKEN), the constants for this process. monkeypatch undoes both after the test.
    """
    import os

    from huggingface_hub import constants

    home = str(home)
    env = {"HF_ENDPOINT": url, "HF_HOME": home, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE",
                "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if token is not None:
        monkeypatch.setenv("HF_TOKEN", token)
    patches = {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": frozenset(set(constants.HF_URL_HOSTS) | {"127.0.0.1"}),
        "HF_HOME": home,
        "HF_HUB_CACHE": os.path.join(home, "hub"),
        "HF_ASSETS_CACHE": os.path.join(home, "assets"),
        "HF_XET_CACHE": os.path.join(home, "xet"),
        "HF_TOKEN_PATH": os.path.join(home, "token"),
        "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens"),
        "HF_HUB_OFFLINE": offline,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    for name, value in patches.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
