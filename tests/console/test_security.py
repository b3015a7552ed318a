"""The console's security cases: CSRF, session expiry and forgery, slowed sign-ins, cookie flags,
the Content-Security-Policy, escaping of untrusted names, images only from their bucket, no
open redirect, and --no-auth on loopback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.console.app import CSP
from customlabels.console.security import Session, SessionCodec, SignInThrottle
from customlabels.service import ServiceSettings, open_context

from .conftest import BUCKET, KEY, SECRET, Console, Server


def test_post_without_csrf_token_is_refused_and_changes_nothing(console: Console) -> None:
    r = console.http.post("/console/projects", data={"name": "p-csrf"})
    assert r.status_code == 403
    assert "CSRF token missing or wrong" in r.text
    forged = console.http.post("/console/projects", data={"name": "p-csrf", "csrf": "x" * 32})
    assert forged.status_code == 403
    assert ">p-csrf</a>" not in console.get("/console").text


def test_csrf_token_in_header_is_accepted(console: Console) -> None:
    console.get("/console")
    r = console.http.post(
        "/console/projects", data={"name": "p-header"}, headers={"X-CSRF-Token": console.csrf}
    )
    assert r.status_code == 200 and "Project p-header created." in r.text


def test_session_cookie_flags(server: Server) -> None:
    with Console(server.url) as c:
        c.get("/console/sign-in")
        r = c.http.post(
            "/console/sign-in",
            data={"access_key_id": KEY, "secret_access_key": SECRET, "csrf": c.csrf},
            follow_redirects=False,
        )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie


def test_session_expires_and_forged_sessions_are_refused() -> None:
    now = [1_000_000.0]
    codec = SessionCodec("secret", max_age_s=60, clock=lambda: now[0])
    cookie = codec.dumps(Session(user="AKID"))
    assert codec.loads(cookie)[0].user == "AKID"
    now[0] += 61
    session, valid = codec.loads(cookie)
    assert not valid and session.user == ""
    other = SessionCodec("another-secret", clock=lambda: now[0]).dumps(Session(user="AKID"))
    forged, valid = codec.loads(other)
    assert not valid and forged.user == ""


def test_a_forged_cookie_leads_to_the_sign_in_page(server: Server) -> None:
    forged = SessionCodec("not-the-server-secret").dumps(Session(user=KEY))
    with httpx.Client(base_url=server.url, cookies={"cl_session": forged}) as http:
        r = http.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")


def test_failed_sign_ins_are_slowed_down(server: Server) -> None:
    throttle: SignInThrottle = server.app.state.console.throttle
    with Console(server.url) as c:
        c.get("/console/sign-in")
        r = c.post("/console/sign-in", {"access_key_id": KEY, "secret_access_key": "wrong"})
        assert r.status_code == 401 and "Wrong access key id or secret access key." in r.text
        assert throttle.delay_s("127.0.0.1") == 0.5
        c.post("/console/sign-in", {"access_key_id": KEY, "secret_access_key": "wrong"})
        assert throttle.delay_s("127.0.0.1") == 1.0
        ok = c.post("/console/sign-in", {"access_key_id": KEY, "secret_access_key": SECRET})
        assert "Signed in as AKIDCONSOLE." in ok.text
    assert throttle.delay_s("127.0.0.1") == 0.0


def test_throttle_doubles_caps_and_forgets() -> None:
    now = [0.0]
    t = SignInThrottle(base_s=0.5, max_s=4, forget_s=600, clock=lambda: now[0])
    delays = []
    for _ in range(6):
        t.failed("a")
        delays.append(t.delay_s("a"))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert t.delay_s("b") == 0.0
    now[0] += 601
    assert t.delay_s("a") == 0.0


def test_every_page_has_a_strict_csp_and_no_inline_script(
    console: Console, bee_project: str
) -> None:
    for path in (
        "/console",
        "/console/sign-in",
        f"/console/projects/{bee_project}",
        f"/console/projects/{bee_project}/datasets/train",
    ):
        r = console.get(path)
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        scripts = re.findall(r"<script([^>]*)>", r.text)
        assert scripts and all('src="/console/static/' in s for s in scripts), scripts
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", r.text), "inline event handler"
        assert "style=" not in r.text, "inline style (refused by the CSP)"


@pytest.fixture(scope="module")
def hostile_project(server: Server) -> str:
    """A project whose manifest has a script as a label name, a file name with markup, and a
    source-ref that tries to leave its bucket."""
    evil_label = '<script>alert("label")</script>'
    lines = [
        {
            "source-ref": f's3://{BUCKET}/images/"><img src=x onerror=alert(1)>.jpg',
            "lab": {
                "image_size": [{"width": 100, "height": 80, "depth": 3}],
                "annotations": [{"class_id": 0, "left": 1, "top": 2, "width": 30, "height": 20}],
            },
            "lab-metadata": {
                "class-map": {"0": evil_label},
                "type": "groundtruth/object-detection",
            },
        },
        {
            "source-ref": f"s3://{BUCKET}/../../../../etc/passwd",
            "lab": {"image_size": [{"width": 10, "height": 10, "depth": 3}], "annotations": []},
            "lab-metadata": {"class-map": {}, "type": "groundtruth/object-detection"},
        },
    ]
    # CreateDataset checks that each line's image exists: the hostile name is a real image, and
    # five plain lines keep the one line that escapes its bucket under the 20 %-invalid rule
    images = server.buckets / BUCKET / "images"
    real = sorted(images.glob("*.jpg"))[0]
    (images / '"><img src=x onerror=alert(1)>.jpg').write_bytes(real.read_bytes())
    for n in range(5):
        (images / f"plain-{n}.jpg").write_bytes(real.read_bytes())
        lines.append({**lines[0], "source-ref": f"s3://{BUCKET}/images/plain-{n}.jpg"})
    path = server.buckets / BUCKET / "hostile.manifest"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with Console(server.url) as c:
        c.sign_in()
        c.post("/console/projects", {"name": "hostile"})
        r = c.post(
            "/console/projects/hostile/datasets",
            {"dataset_type": "TRAIN", "bucket": BUCKET, "key": "hostile.manifest"},
        )
        assert r.status_code == 200, r.text
    return "hostile"


def test_untrusted_names_are_escaped(console: Console, hostile_project: str) -> None:
    page = console.get(f"/console/projects/{hostile_project}/datasets/train").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in page


def test_no_image_url_reads_outside_its_bucket(console: Console, hostile_project: str) -> None:
    base = f"/console/projects/{hostile_project}/datasets/train"
    grid = console.get(base + "/grid", params={"q": "passwd"}).text
    entry = re.search(r"/entries/(\d+)", grid).group(1)  # type: ignore[union-attr]
    r = console.get(f"{base}/entries/{entry}/image")
    assert r.status_code == 400 and "InvalidS3ObjectException" in r.text
    assert "root:" not in r.text
    # an entry id of another project's dataset is not served through this one
    other = console.get("/console/projects/bees-shared/datasets/train/grid").text
    foreign = re.search(r"/entries/(\d+)", other).group(1)  # type: ignore[union-attr]
    refused = console.get(f"{base}/entries/{foreign}/image")
    assert refused.status_code == 400 and "ResourceNotFoundException" in refused.text


def test_sign_in_never_redirects_off_the_console(server: Server) -> None:
    with Console(server.url) as c:
        c.get("/console/sign-in")
        r = c.http.post(
            "/console/sign-in",
            data={
                "access_key_id": KEY,
                "secret_access_key": SECRET,
                "csrf": c.csrf,
                "next": "//evil.example/",
            },
            follow_redirects=False,
        )
    assert r.headers["location"] == "/console"


def test_no_auth_on_loopback_opens_the_console(tmp_path: Path) -> None:
    settings = ServiceSettings(home=tmp_path, auth=False)
    ctx = open_context(settings)
    try:
        with serve_in_thread(create_app(settings, ctx)) as url, Console(url) as c:
            r = c.get("/console")
            assert r.url.path == "/console" and "No sign-in (--no-auth, loopback)" in r.text
            assert "Sign out" not in r.text
            assert "Project p-open created." in c.post("/console/projects", {"name": "p-open"}).text
    finally:
        ctx.close()
