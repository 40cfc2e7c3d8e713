"""The deployment files, checked without a Docker engine (none runs here): compose is parsed as
YAML, the Dockerfile as a list of instructions, and both are held to what the hub expects."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from hub.config import load_config
from hub.settings import Settings, known_variables

DOCKER = Path(__file__).parents[2] / "docker"
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
HUB_SERVICES = ("hub", "migrate", "apply")  # run the contacthub image


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` with ``given`` as the .env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if given.get(name):
            return given[name]
        assert op != ":?", f"{name} is required by compose and missing from env.example"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def env_example() -> dict[str, str]:
    lines = (DOCKER / "env.example").read_text().splitlines()
    pairs = [ln.split("=", 1) for ln in lines if ln.strip() and not ln.startswith("#")]
    return {k: v or "placeholder-value" for k, v in pairs}


def test_every_hub_variable_in_compose_is_a_known_setting() -> None:
    seen = set()
    for name, service in SERVICES.items():
        for var in environment(name):
            if var.startswith("HUB_"):
                seen.add(var)
                assert var in known_variables(), f"{name}: {var} is not a hub setting"
        assert not any(str(v).startswith("HUB_") for v in service.get("env_file", []) or [])
    assert {"HUB_DATABASE_URL", "HUB_REDIS_URL", "HUB_MEILI_URL", "HUB_SECRET_KEY"} <= seen


def test_compose_values_parse_as_settings() -> None:
    """With the documented .env, each hub container's settings load (types and ranges hold)."""
    given = env_example()
    for name in HUB_SERVICES:
        hub_env = {k: interpolate(v, given) for k, v in environment(name).items()}
        settings = Settings.from_env({k: v for k, v in hub_env.items() if k.startswith("HUB_")})
        assert settings.database_url.startswith("postgresql://contacthub:")
        assert "@postgres:5432/" in settings.database_url
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.meili_url == "http://meilisearch:7700"
        assert (settings.host, settings.port) == ("0.0.0.0", 8000)  # noqa: S104 (in a container)
        assert not settings.is_sqlite


def test_services_the_hub_needs_are_declared_and_awaited() -> None:
    assert {"hub", "postgres", "redis", "meilisearch", "migrate", "apply"} <= set(SERVICES)
    depends = SERVICES["hub"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["meilisearch"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    for backing in ("postgres", "redis", "meilisearch"):
        assert SERVICES[backing]["healthcheck"]["test"], backing
    # the MEILI key the hub uses is the master key Meilisearch is started with
    assert environment("meilisearch")["MEILI_MASTER_KEY"] == environment("hub")["HUB_MEILI_KEY"]
    assert environment("postgres")["POSTGRES_PASSWORD"] in environment("hub")["HUB_DATABASE_URL"]
    for name in HUB_SERVICES:
        assert SERVICES[name]["build"]["dockerfile"] == "docker/Dockerfile"
    assert SERVICES["migrate"]["command"] == ["migrate"]


def test_state_lives_in_named_volumes() -> None:
    volumes = set(COMPOSE["volumes"])
    mounts = {
        name: {str(v).split(":")[0]: str(v).split(":")[1] for v in SERVICES[name]["volumes"]}
        for name in ("hub", "postgres", "meilisearch")
    }
    assert mounts["hub"]["hub-data"] == interpolate(environment("hub")["HUB_DATA_DIR"], {})
    assert mounts["postgres"]["pg-data"] == "/var/lib/postgresql/data"
    assert mounts["meilisearch"]["meili-data"] == "/meili_data"
    assert {"hub-data", "pg-data", "meili-data"} <= volumes


def test_apply_service_gets_every_secret_its_configuration_names() -> None:
    source = SERVICES["apply"]["volumes"][0].split(":/etc/")[0]
    default_file = re.sub(r"^\$\{CONTACTHUB_CONFIG:-(.*)\}$", r"\1", source)
    config = load_config(DOCKER / default_file)
    named = {a.password_env for a in config.spec.agents if a.password_env}
    named |= {v for c in config.spec.channels for k, v in c.config.items() if k.endswith("_env")}
    assert named <= set(environment("apply")), named - set(environment("apply"))
    assert named <= set(env_example())
    assert SERVICES["apply"]["command"] == ["apply", "/etc/contacthub/contacthub.yaml"]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    steps = dockerfile()
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    bases = [a.split()[0] for w, a in steps if w == "FROM"]
    assert len(bases) >= 2
    assert {args.get(b.strip("${}"), b) for b in bases} == {"python:3.11-slim"}
    assert any(w == "COPY" and a.startswith("--from=build") for w, a in final_stage())


def test_dockerfile_runs_as_non_root() -> None:
    users = [a for w, a in final_stage() if w == "USER"]
    assert users, "the runtime stage never leaves root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    created = " ".join(a for w, a in final_stage() if w == "RUN")
    assert f"useradd --system --uid 10001 --gid {user}" in created or user == "10001"


def test_dockerfile_health_check_and_command() -> None:
    checks = [a for w, a in final_stage() if w == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0] and "CMD" in checks[0]
    command = checks[0].split("CMD", 1)[1].strip()
    exec_form = yaml.safe_load(command)  # JSON array form, like the instruction expects
    assert exec_form[0] == "python" and "HUB_PORT" in exec_form[2]
    entry = [yaml.safe_load(a) for w, a in final_stage() if w == "ENTRYPOINT"]
    cmd = [yaml.safe_load(a) for w, a in final_stage() if w == "CMD"]
    assert entry[-1] + cmd[-1] == ["contacthub", "serve"]
    expose = [shlex.split(a) for w, a in final_stage() if w == "EXPOSE"]
    env = " ".join(a for w, a in final_stage() if w == "ENV")
    assert expose == [["8000"]] and "HUB_PORT=8000" in env and "HUB_HOST=0.0.0.0" in env
    assert all(v in known_variables() for v in re.findall(r"\b(HUB_[A-Z_]+)=", env))
