"""The router, the settings and the request/response objects, without sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventhub import Hub
from eventhub.errors import ConfigError, PluginError

from .http_support import eventhub_http

Router = eventhub_http.Router
Response = eventhub_http.Response


def handler(request: eventhub_http.Request) -> str:
    return "ok"


def test_routes_match_segments_and_params() -> None:
    router = Router().for_plugin("a")
    router.add("GET", "/", handler)
    router.add("GET", "/orders/{id}", handler)
    router.add("POST", "/orders/{id}/pay", handler)
    root = router.match("GET", [])
    assert not isinstance(root, list) and root[0].pattern == "/"
    found = router.match("GET", ["orders", "a/b"])
    assert not isinstance(found, list) and found[1] == {"id": "a/b"}
    assert router.match("HEAD", ["orders", "1"]) == router.match("GET", ["orders", "1"])
    assert router.match("GET", ["orders", "1", "pay"]) == ["POST"]
    assert router.match("DELETE", ["orders", "1"]) == ["GET", "HEAD"]
    assert router.match("GET", ["nothing"]) == []
    assert router.match("GET", ["orders", ""]) == []


def test_a_second_plugin_claiming_a_route_is_refused_naming_both() -> None:
    router = Router()
    router.for_plugin("first").add("GET", "/orders/{id}", handler)
    with pytest.raises(eventhub_http.RouteConflict, match=r"plugin 'second' adds it, but plugin 'first'"):
        router.for_plugin("second").add("get", "/orders/{other}", handler)
    router.for_plugin("second").add("PUT", "/orders/{id}", handler)  # another method is another route


@pytest.mark.parametrize("pattern", ["orders", "/a/{b", "/x{y}", "/{1}"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        Router().add("GET", pattern, handler)


def test_responses_from_content() -> None:
    assert Response("hé").body == "hé".encode() and ("content-type", "text/plain; charset=utf-8") in (
        Response("x").headers
    )
    assert Response({"a": 1}).body == b'{"a": 1}'
    assert Response(b"x", headers=[("Content-Type", "image/png")]).headers == [("Content-Type", "image/png")]
    with pytest.raises(TypeError):
        Response(3.5)  # type: ignore[arg-type]  # a float on purpose: no body type takes it


@pytest.mark.parametrize(
    "text", ["tcp:8080", "tcp:0:interface=0.0.0.0", "tcp6:80:interface=\\:\\:1", "unix:web.sock"]
)
def test_listen_takes_endpoint_strings(text: str) -> None:
    assert eventhub_http.HttpSettings(listen=(text,)).listen == (text,)


@pytest.mark.parametrize("text", ["8080", "udp:53", "tcp:x", "tcp:99999", "tcp:80:host=a", "tcp:"])
def test_bad_listen_strings_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match=r"http\.listen"):
        eventhub_http.HttpSettings(listen=(text,))


def test_settings_are_checked_and_the_token_read_from_its_file(tmp_path: Path) -> None:
    settings = eventhub_http.HttpSettings.from_table({"parser": "h11", "max_body": 10})
    assert (settings.parser, settings.max_body) == ("h11", 10)
    with pytest.raises(ConfigError, match=r"http\.parser"):
        eventhub_http.HttpSettings.from_table({"parser": "fast"})
    with pytest.raises(ConfigError, match=r"http\.max_body"):
        eventhub_http.HttpSettings.from_table({"max_body": 0})
    with pytest.raises(ConfigError, match=r"http\.body_timeout"):
        eventhub_http.HttpSettings.from_table({"body_timeout": 0})
    too_small_or_big = [("header_timeout", 0.001), ("keep_alive_timeout", 1e-9), ("body_timeout", 1e400)]
    for key, value in too_small_or_big:
        with pytest.raises(ConfigError, match=rf"http\.{key}"):
            eventhub_http.HttpSettings.from_table({key: value})
    assert eventhub_http.HttpSettings.from_table({"header_timeout": 0.1}).header_timeout == 0.1
    with pytest.raises(ConfigError, match=r"http\.max_per_address"):
        eventhub_http.HttpSettings.from_table({"max_per_address": -1})
    limits = eventhub_http.HttpSettings.from_table({"max_per_address": 0, "loopback_exempt": False})
    assert (limits.max_per_address, limits.loopback_exempt) == (0, False)
    token_file = tmp_path / "token"
    token_file.write_text(" s3cret\n")
    assert eventhub_http.HttpSettings(token_file=str(token_file)).read_token() == "s3cret"
    with pytest.raises(ConfigError, match=r"http\.token_file"):
        eventhub_http.HttpSettings(token_file=str(tmp_path / "missing")).read_token()
    with pytest.raises(ConfigError, match="not both"):
        eventhub_http.HttpSettings(token="a", token_file=str(token_file))


class RouteMaker:
    def eventhub_http_routes(self, router: eventhub_http.Router) -> None:
        router.add("GET", "/mine", handler)


def test_registering_by_hand_needs_the_hookspecs_first() -> None:
    hub = Hub()
    with pytest.raises(PluginError, match="unknown hook 'eventhub_http_routes'"):
        hub.register(RouteMaker(), "maker")
    eventhub_http.add_hookspecs(hub)
    eventhub_http.add_hookspecs(hub)  # twice is harmless
    hub.register(RouteMaker(), "maker")
    router = eventhub_http.HttpPlugin().collect_routes(hub)
    assert [(r.owner, r.pattern) for r in router.routes if r.owner == "maker"] == [("maker", "/mine")]


def test_the_server_speaks_https_on_a_tls_endpoint(tmp_path: Path) -> None:
    import ssl
    import urllib.request

    trustme = pytest.importorskip("trustme")
    from .http_support import ServedHub

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert))
    certificate.private_key_pem.write_to_path(str(key))
    with ServedHub(listen=(f"tls:0:certKey={cert}:privateKey={key}",)) as served:
        context = ssl.create_default_context()
        authority.configure_trust(context)
        with urllib.request.urlopen(
            f"https://127.0.0.1:{served.port}/healthz", context=context, timeout=10
        ) as reply:
            assert reply.status == 200
