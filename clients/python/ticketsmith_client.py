"""Ticketsmith's REST API from Python, with the standard library only.

    from ticketsmith_client import Client, NotFound
    c = Client("http://127.0.0.1:8080", api_key="tsk_...")
    model = c.upload_model(["mlp.onnx"])
    job = c.submit({"model": f"model:{model['id']}", "dataset": "builtin:mnist", "rounds": 2})
    for event in c.watch(job["id"]):
        print(event["kind"])
    job = c.wait(job["id"])
    for a in c.artifacts(job["id"], kind="ticket"):
        c.download(a["id"], f"ticket-{a['name'].split('/')[-1]}")

Every API error is raised as the subclass of TicketsmithError named after its
code (NotFound, InvalidArgument, ...), carrying `code`, `message`, `field`
(the request field at fault, when there is one), `errors` (every validation
problem, when the server lists them) and `status` (the HTTP status).
Downloads are checked against the sha256 the server sends (X-Content-SHA256);
a mismatch raises DataLoss.
"""

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

__version__ = "0.1.0"

__all__ = [
    "Client", "verify_webhook", "TicketsmithError", "InvalidArgument", "UnsupportedModel", "Unauthenticated",
    "NotFound", "AlreadyExists", "FailedPrecondition", "IdempotencyKeyReused", "ResourceExhausted",
    "PayloadTooLarge", "RangeNotSatisfiable", "RateLimited", "QuotaExceeded", "DeadlineExceeded",
    "EngineError", "WorkerLost", "Internal", "Unavailable", "DataLoss", "TERMINAL_STATES",
]

TERMINAL_STATES = frozenset(["succeeded", "failed", "cancelled"])


class TicketsmithError(Exception):
    """An error answered by the service (or found by the client: DataLoss, Unavailable)."""

    code = "UNKNOWN"

    def __init__(self, message, status=0, code=None, field=None, errors=None, request_id=None):
        super().__init__(message if field is None else "%s (field %s)" % (message, field))
        self.message = message
        self.status = status
        if code is not None:
            self.code = code
        self.field = field
        self.errors = errors or []
        self.request_id = request_id


class InvalidArgument(TicketsmithError):
    code = "INVALID_ARGUMENT"


class UnsupportedModel(InvalidArgument):
    code = "UNSUPPORTED_MODEL"


class Unauthenticated(TicketsmithError):
    code = "UNAUTHENTICATED"


class NotFound(TicketsmithError):
    code = "NOT_FOUND"


class AlreadyExists(TicketsmithError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(TicketsmithError):
    code = "FAILED_PRECONDITION"


class IdempotencyKeyReused(FailedPrecondition):
    code = "IDEMPOTENCY_KEY_REUSED"


class ResourceExhausted(TicketsmithError):
    """The parent of the errors that mean "too much": a body, a rate, a quota."""

    code = "RESOURCE_EXHAUSTED"


class PayloadTooLarge(ResourceExhausted):
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(ResourceExhausted):
    code = "RATE_LIMITED"


class QuotaExceeded(ResourceExhausted):
    code = "QUOTA_EXCEEDED"


class RangeNotSatisfiable(TicketsmithError):
    code = "RANGE_NOT_SATISFIABLE"


class DeadlineExceeded(TicketsmithError):
    code = "DEADLINE_EXCEEDED"


class UploadTimeout(TicketsmithError):
    """An upload stalled or took too long to arrive (408); send it again."""

    code = "UPLOAD_TIMEOUT"


class EngineError(TicketsmithError):
    code = "ENGINE_ERROR"


class WorkerLost(TicketsmithError):
    code = "WORKER_LOST"


class Internal(TicketsmithError):
    code = "INTERNAL"


class Unavailable(TicketsmithError):
    code = "UNAVAILABLE"


class DataLoss(TicketsmithError):
    """Downloaded bytes whose sha256 is not the one the server reported."""

    code = "DATA_LOSS"


#: One class per error code of the service's error table (src/service/errors.ts).
ERROR_CLASSES = {
    cls.code: cls
    for cls in (InvalidArgument, UnsupportedModel, Unauthenticated, NotFound, AlreadyExists, FailedPrecondition,
                IdempotencyKeyReused, PayloadTooLarge, RangeNotSatisfiable, RateLimited, QuotaExceeded,
                DeadlineExceeded, UploadTimeout, EngineError, WorkerLost, Internal, Unavailable, DataLoss)
}


def _error_from(status, body, request_id=None):
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except ValueError:
        payload = None
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        cls = ERROR_CLASSES.get(err["code"], TicketsmithError)
        errors = payload.get("errors") if isinstance(payload.get("errors"), list) else []
        return cls(err.get("message") or err["code"], status=status, code=err["code"], field=err.get("field"),
                   errors=errors, request_id=request_id)
    fallback = NotFound if status == 404 else Unavailable if status in (502, 503, 504) else Internal
    return fallback("HTTP %d" % status, status=status, request_id=request_id)


def _next_cursor(page):
    """Lists answer `nextCursor`; older servers named it `next_cursor`."""
    if "nextCursor" in page:
        return page["nextCursor"]
    return page.get("next_cursor")


def _multipart(fields, files):
    """A multipart/form-data body: fields [(name, value)], files [(field, filename, bytes)]."""
    boundary = "ticketsmith-" + uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" % (boundary, name)).encode())
        parts.append(str(value).encode("utf-8") + b"\r\n")
    for field, filename, data in files:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                      "Content-Type: application/octet-stream\r\n\r\n" % (boundary, field, quoted)).encode("utf-8"))
        parts.append(bytes(data) + b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode())
    return b"".join(parts), "multipart/form-data; boundary=" + boundary


def _read_file(f):
    """A path, or a (filename, bytes) pair, as (filename, bytes)."""
    if isinstance(f, (tuple, list)):
        return f[0], f[1]
    with open(f, "rb") as fh:
        return os.path.basename(f), fh.read()


class Client:
    """A Ticketsmith REST client. `base_url` like http://127.0.0.1:8080; `api_key` a tsk_... key."""

    def __init__(self, base_url, api_key=None, timeout=60.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # -- plumbing -------------------------------------------------------------------------------

    def _open(self, method, path, body=None, headers=None, query=None, timeout=None):
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode([(k, v) for k, v in query.items() if v is not None])
        h = {"Accept": "application/json"}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        h.update(headers or {})
        req = urllib.request.Request(url, data=body, headers=h, method=method)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout if timeout is None else timeout)
        except urllib.error.HTTPError as e:
            with e:
                raise _error_from(e.code, e.read(), e.headers.get("X-Request-Id")) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise Unavailable("%s %s: %s" % (method, url, getattr(e, "reason", e))) from e

    def _json(self, method, path, body=None, headers=None, query=None):
        data = None
        h = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            h["Content-Type"] = "application/json"
        with self._open(method, path, data, h, query) as res:
            raw = res.read()
            return (json.loads(raw.decode("utf-8")) if raw else None), res.status

    def _pages(self, path, query=None, limit=None):
        """Every item of a list, page after page (cursor paging)."""
        cursor = None
        for _ in range(100000):
            page, _status = self._json("GET", path, query=dict(query or {}, cursor=cursor, limit=limit))
            for item in page["items"]:
                yield item
            cursor = _next_cursor(page)
            if not cursor:
                return

    # -- models and datasets --------------------------------------------------------------------

    def upload_model(self, files=None, archive=None, name=None):
        """Uploads a model: `files` (paths or (filename, bytes) pairs: model.json and its weights, one
        .onnx, .keras or .h5 file), or one `archive` (.zip/.tar.gz, a path or a pair)."""
        parts = []
        if archive is not None:
            filename, data = _read_file(archive)
            parts.append(("archive", filename, data))
        for f in files or []:
            filename, data = _read_file(f)
            parts.append(("files", filename, data))
        body, ctype = _multipart([("name", name)] if name is not None else [], parts)
        with self._open("POST", "/v1/models", body, {"Content-Type": ctype}) as res:
            return json.loads(res.read().decode("utf-8"))

    def get_model(self, model_id):
        return self._json("GET", "/v1/models/" + urllib.parse.quote(model_id, safe=""))[0]

    def list_models(self, limit=None):
        return list(self._pages("/v1/models", limit=limit))

    def register_dataset(self, reference):
        """Registers a dataset by reference (builtin:mnist, an https URL, ...)."""
        return self._json("POST", "/v1/datasets", {"reference": reference})[0]

    def list_datasets(self, limit=None):
        return list(self._pages("/v1/datasets", limit=limit))

    # -- jobs -----------------------------------------------------------------------------------

    def submit(self, spec, idempotency_key=None, callback_url=None):
        """Submits a job from a run spec (the REST body: model, dataset, method, rounds, ...).
        Returns the job; `job["created"]` is False when the idempotency key found an earlier one."""
        body = dict(spec)
        if callback_url is not None:
            body["callbackUrl"] = callback_url
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        job, status = self._json("POST", "/v1/jobs", body, headers)
        job["created"] = status == 201
        return job

    def get_job(self, job_id):
        return self._json("GET", "/v1/jobs/" + urllib.parse.quote(job_id, safe=""))[0]

    def list_jobs(self, status=None, limit=None, cursor=None):
        """One page: {"items": [...], "next_cursor": str or None}."""
        page, _ = self._json("GET", "/v1/jobs", query={"status": status, "limit": limit, "cursor": cursor})
        return {"items": page["items"], "next_cursor": _next_cursor(page)}

    def iter_jobs(self, status=None, limit=None):
        """Every job, following the cursor from page to page."""
        return self._pages("/v1/jobs", query={"status": status}, limit=limit)

    def rounds(self, job_id):
        """The job's committed rounds, in order."""
        return list(self._pages("/v1/jobs/%s/rounds" % urllib.parse.quote(job_id, safe="")))

    def cancel(self, job_id):
        return self._json("POST", "/v1/jobs/%s/cancel" % urllib.parse.quote(job_id, safe=""))[0]

    def artifacts(self, job_id, kind=None):
        return list(self._pages("/v1/jobs/%s/artifacts" % urllib.parse.quote(job_id, safe=""), query={"kind": kind}))

    def watch(self, job_id, after_id=None, reconnects=5):
        """The job's events as they happen (Server-Sent Events), until the job has finished.
        A dropped stream is resumed with Last-Event-ID after the last event seen."""
        last = after_id
        retry_s = 1.0
        path = "/v1/jobs/%s/events" % urllib.parse.quote(job_id, safe="")
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            ended = False
            try:
                # No read timeout beyond the usual one: the server sends heartbeats while a job is quiet.
                with self._open("GET", path, headers=headers) as res:
                    event, data = None, []
                    for raw in res:
                        line = raw.decode("utf-8").rstrip("\r\n")
                        if line == "":
                            if data:
                                payload = "\n".join(data)
                                if event == "end":
                                    ended = True
                                    break
                                if event == "error":
                                    raise _error_from(500, payload.encode("utf-8"))
                                e = json.loads(payload)
                                last = e.get("id", last)
                                yield e
                            event, data = None, []
                        elif line.startswith(":"):
                            continue
                        else:
                            name, _, value = line.partition(":")
                            value = value[1:] if value.startswith(" ") else value
                            if name == "event":
                                event = value
                            elif name == "data":
                                data.append(value)
                            elif name == "retry" and value.isdigit():
                                retry_s = int(value) / 1000.0
            except (Unavailable, ConnectionError, TimeoutError, OSError) as e:
                if reconnects <= 0:
                    raise Unavailable("event stream of job %s kept dropping: %s" % (job_id, e)) from e
            if ended:
                return
            if reconnects <= 0:
                raise Unavailable("event stream of job %s kept dropping" % job_id)
            reconnects -= 1
            time.sleep(retry_s)

    def wait(self, job_id, on_event=None):
        """Follows the job's events to its end and returns the finished job."""
        for e in self.watch(job_id):
            if on_event is not None:
                on_event(e)
        job = self.get_job(job_id)
        if job["status"] not in TERMINAL_STATES:
            raise Unavailable("event stream of job %s ended while it is %s" % (job_id, job["status"]))
        return job

    # -- downloads ------------------------------------------------------------------------------

    def download(self, artifact_id, dest=None, expected_sha256=None):
        """Downloads an artifact, checking its sha256 against X-Content-SHA256 (and `expected_sha256`,
        e.g. the listing's). Writes to `dest` when given (returns the path), else returns the bytes."""
        path = "/v1/artifacts/" + urllib.parse.quote(artifact_id, safe="")
        return self._download(path, dest, expected_sha256, "artifact " + artifact_id)

    def download_ticket_zip(self, job_id, dest=None):
        """The job's ticket as one zip, sha256-checked like download()."""
        path = "/v1/jobs/%s/ticket.zip" % urllib.parse.quote(job_id, safe="")
        return self._download(path, dest, None, "job %s ticket.zip" % job_id)

    def _download(self, path, dest, expected, what):
        digest = hashlib.sha256()
        chunks = []
        tmp = dest + ".part" if dest else None
        out = open(tmp, "wb") if tmp else None
        try:
            with self._open("GET", path, headers={"Accept": "application/octet-stream"}) as res:
                reported = res.headers.get("X-Content-SHA256")
                while True:
                    chunk = res.read(1 << 16)
                    if not chunk:
                        break
                    digest.update(chunk)
                    if out:
                        out.write(chunk)
                    else:
                        chunks.append(chunk)
            got = digest.hexdigest()
            for want in (reported, expected):
                if want is not None and want.lower() != got:
                    raise DataLoss("%s: sha256 %s does not match %s" % (what, got, want))
            if reported is None and expected is None:
                raise DataLoss("%s: the server sent no X-Content-SHA256 to check against" % what)
        except BaseException:
            if out:
                out.close()
                os.unlink(tmp)
            raise
        if out:
            out.close()
            os.replace(tmp, dest)
            return dest
        return b"".join(chunks)


def verify_webhook(secret, headers, body, tolerance=300, now=None):
    """True when a webhook delivery is genuine: its Ticketsmith-Signature header
    (`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`) matches the raw
    `body` (bytes, as received) and `t` is within `tolerance` seconds of now."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(body, str):
        body = body.encode("utf-8")
    lower = {k.lower(): v for k, v in dict(headers).items()}
    header = lower.get("ticketsmith-signature")
    if not header:
        return False
    parts = {}
    signatures = []
    for item in header.split(","):
        k, _, v = item.strip().partition("=")
        if k == "v1":
            signatures.append(v)
        else:
            parts[k] = v
    t = parts.get("t", "")
    if not t.isdigit() or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - int(t)) > tolerance:
        return False
    expected = hmac.new(secret, t.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)
