"""The guide (docs/guide/) stays true: generated hook reference, links, complete configuration reference."""

from __future__ import annotations

import dataclasses
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import REPO, load_source_package

from eventhub.pytest_plugin import RunEventhub

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

GUIDE = REPO / "docs" / "guide"
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Chapters whose ```python blocks are complete programs, each run as shown (at least so many).
RUNNABLE = {"events.md": 5, "coroutines.md": 5, "asyncio.md": 4}
NOT_RUN = re.compile(r"^<!-- not run: \S.* -->$")


@pytest.fixture(scope="module")
def generator() -> dict[str, Any]:
    return runpy.run_path(str(GUIDE / "make_hook_reference.py"))


def test_the_hook_reference_is_up_to_date(generator: dict[str, Any]) -> None:
    committed = (GUIDE / "hooks.md").read_text(encoding="utf-8")
    assert committed == generator["render"](), "run: python docs/guide/make_hook_reference.py"
    assert generator["main"](["--check"]) == 0


def test_the_check_fails_on_a_stale_reference(
    generator: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "hooks.md"
    stale.write_text("# Hook reference\n")
    main = generator["main"]
    main.__globals__["OUTPUT"] = stale
    try:
        assert main(["--check"]) == 1
        assert "is out of date" in capsys.readouterr().err
    finally:
        main.__globals__["OUTPUT"] = GUIDE / "hooks.md"


def test_the_hook_reference_documents_every_hook(generator: dict[str, Any]) -> None:
    text = (GUIDE / "hooks.md").read_text(encoding="utf-8")
    names = [name for name, _, _ in generator["hooks"]()]
    assert len(names) >= 9
    for name in names:
        assert f"\n## {name}\n" in text
        assert f"def {name}(" in text
    assert not re.search(r"(?<!`)``(?!`)", text)  # reStructuredText literals became Markdown


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", sorted(GUIDE.glob("*.md")), ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no heading for {target}"


def test_the_guide_links_every_chapter_and_the_migration_table() -> None:
    index = (GUIDE / "README.md").read_text(encoding="utf-8")
    linked = set(LINK.findall(index))
    for page in GUIDE.glob("*.md"):
        if page.name != "README.md":
            assert page.name in linked
    assert "../migration-twisted.md" in linked


def test_the_configuration_reference_names_every_environment_variable() -> None:
    reference = (GUIDE / "configuration.md").read_text(encoding="utf-8")
    used: set[str] = set()
    for source in (REPO / "eventhub").rglob("*.py"):
        used |= set(re.findall(r"EVENTHUB_[A-Z_]+[A-Z]", source.read_text(encoding="utf-8")))
    assert used >= {"EVENTHUB_TRACE", "EVENTHUB_CACHE_DIR", "EVENTHUB_NO_CACHE"}
    assert sorted(name for name in used if f"`{name}`" not in reference) == []


@pytest.mark.parametrize("command", ["run", "plugins", "new-plugin"])
def test_the_configuration_reference_names_every_option(run_eventhub: RunEventhub, command: str) -> None:
    reference = (GUIDE / "configuration.md").read_text(encoding="utf-8")
    usage = run_eventhub(command, "--help")
    assert usage.status == 0
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", usage.stdout)) - {"--help", "--verbose", "--quiet"}
    assert options
    assert sorted(option for option in options if f"`{option}" not in reference) == []


def _python_blocks(page: Path) -> list[tuple[int, str, bool]]:
    """``(line, code, runnable)`` for each ```python block; ``<!-- not run: why -->`` just before opts out."""
    blocks = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```python":
            index += 1
            continue
        start = index
        before = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        end = lines.index("```", start + 1)
        blocks.append((start + 1, "\n".join(lines[start + 1 : end]) + "\n", not NOT_RUN.match(before)))
        index = end + 1
    return blocks


BLOCKS = [(page, line, code) for page in RUNNABLE for line, code, run in _python_blocks(GUIDE / page) if run]


def test_the_runnable_chapters_have_blocks_and_skip_few() -> None:
    for page, at_least in RUNNABLE.items():
        blocks = _python_blocks(GUIDE / page)
        assert len(blocks) >= at_least, page
        assert sum(not run for _, _, run in blocks) <= 2, f"{page}: most blocks must run"


@pytest.mark.e2e  # each block in a fresh interpreter
@pytest.mark.parametrize(("page", "line", "code"), BLOCKS, ids=[f"{p}:{line}" for p, line, _ in BLOCKS])
def test_every_python_block_runs_as_shown(page: str, line: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    # Not the user's settings; the suite's plugin cache (conftest) rather than the user's.
    env = {k: v for k, v in os.environ.items() if k == "EVENTHUB_CACHE_DIR" or not k.startswith("EVENTHUB_")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{page}, block at line {line}:\n{done.stdout}\n{done.stderr}"


def test_the_operations_table_names_every_setting_of_echo_chat_and_http_with_its_default() -> None:
    text = (GUIDE / "operations.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `((?:echo|chat|http)\.\w+)` \| `([^`]*)` \|", text, re.MULTILINE))
    plugins = [
        ("echo", "eventhub_echo", "EchoSettings"),
        ("chat", "eventhub_chat", "ChatSettings"),
        ("http", "eventhub_http", "HttpSettings"),
    ]
    for folder, package, cls in plugins:
        settings = getattr(load_source_package(folder, package), cls)()
        for field in dataclasses.fields(settings):
            key = f"{folder}.{field.name}"
            assert key in rows, f"operations.md has no row for {key}"
            default = getattr(settings, field.name)
            default = list(default) if isinstance(default, tuple) else default  # TOML has arrays
            if default is not None:
                assert tomllib.loads(f"value = {rows[key]}")["value"] == default, key
