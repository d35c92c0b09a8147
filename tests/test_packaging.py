"""What ships: package metadata, the Docker image, the Compose example, licence and changelog."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import p1mqtt
from p1mqtt.config.loader import CONFIG_ENV, environment_variables

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict[str, Any]:
    """The parsed pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        if keyword.upper() == "FROM":
            instructions = []  # keep only the last stage
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_metadata_is_ready_for_a_package_index() -> None:
    """Version, licence, URLs, scripts, the windows extra and the unit file as package data."""
    project = pyproject()["project"]
    assert project["version"] == p1mqtt.__version__
    assert project["license"] == "MIT"
    assert project["scripts"] == {"p1mqtt": "p1mqtt.cli:main"}
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(project["urls"])
    assert "tzdata>=2024.1" in project["dependencies"]  # Windows has no zoneinfo database
    assert project["optional-dependencies"]["windows"] == ["pywin32>=306; sys_platform == 'win32'"]
    package_data = pyproject()["tool"]["setuptools"]["package-data"]["p1mqtt"]
    assert "data/*.service" in package_data
    assert (ROOT / "src" / "p1mqtt" / "data" / "p1mqtt.service").is_file()


def test_python_dash_m_runs_the_cli() -> None:
    """`python -m p1mqtt --version` prints the version."""
    result = subprocess.run(
        [sys.executable, "-m", "p1mqtt", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"p1mqtt {p1mqtt.__version__}"


def test_license_and_changelog() -> None:
    """An MIT licence and a Keep a Changelog file with the first release's section."""
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 p1mqtt developers" in license_text
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in changelog
    assert "## [Unreleased]" in changelog
    assert "0.1.0" in changelog
    assert "### Added" in changelog


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    """Slim base, pip install, a non-root user in dialout, /data volume, HEALTHCHECK health."""
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    arguments = dict(instructions)
    assert arguments["FROM"].startswith("python:3.12-slim")
    run = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install" in run
    assert re.search(r"useradd .*--gid dialout .*p1mqtt", run)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users == ["p1mqtt"]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert "VOLUME" in keywords and arguments["VOLUME"] == "/data"
    assert "STATE_DIRECTORY=/data" in arguments["ENV"]
    healthcheck = arguments["HEALTHCHECK"]
    assert re.search(r'CMD \["p1mqtt", "health"', healthcheck)
    assert arguments["ENTRYPOINT"] == '["p1mqtt"]'
    assert arguments["CMD"] == '["run"]'


def test_dockerfile_and_compose_use_only_known_settings() -> None:
    """Every P1MQTT_* variable set for the container is one the configuration knows."""
    known = {*environment_variables(), CONFIG_ENV}
    text = (ROOT / "Dockerfile").read_text() + (ROOT / "docker-compose.example.yml").read_text()
    used = set(re.findall(r"\bP1MQTT_[A-Z0-9_]+", text))
    assert used, "no settings found"
    assert used <= known, used - known


def test_compose_passes_the_meter_through() -> None:
    """Mosquitto and p1mqtt; the by-id device becomes /dev/p1, which p1mqtt reads."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "docker-compose.example.yml").read_text())
    services = compose["services"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:")
    p1 = services["p1mqtt"]
    assert p1["build"] == "."
    (device,) = p1["devices"]
    host_path, container_path = device.split(":")
    assert host_path.startswith("/dev/serial/by-id/")
    assert container_path == "/dev/p1"
    assert p1["environment"]["P1MQTT_SERIAL_PORT"] == "/dev/p1"
    assert p1["environment"]["P1MQTT_MQTT_BROKER"] == "mqtt://mosquitto:1883"
    assert "mosquitto" in p1["depends_on"]
    assert "privileged" not in p1


def test_dockerignore_keeps_the_context_small() -> None:
    """The virtual environment, git history and caches stay out of the build context."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    assert not {"src", "pyproject.toml", "README.md", "LICENSE"} & ignored


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown text."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("name", ["installation.md", "hardware.md", "troubleshooting.md", "faq.md"])
def test_service_docs_links_resolve(name: str) -> None:
    """Every relative link in the service documentation names an existing file and heading."""
    docs = ROOT / "docs"
    text = (docs / name).read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        path = docs / file_part if file_part else docs / name
        assert path.is_file(), f"{name}: {target}"
        if anchor:
            assert anchor in heading_anchors(path.read_text()), f"{name}: {target}"
