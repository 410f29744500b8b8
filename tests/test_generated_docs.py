"""Documentation rendered from the code: each setting is declared once (config.py), each
provider's behaviour in its profile; the committed files must be what those render."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values

from llmgw.config import Settings, load_settings, variables
from llmgw.provider_docs import with_provider_section
from llmgw.settings_docs import env_example, with_readme_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_env_example_is_what_the_declarations_render() -> None:
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "stale: run `python scripts/generate-docs`"
    )


def test_the_readme_table_is_what_the_declarations_render() -> None:
    readme = (ROOT / "README.md").read_text()
    assert with_readme_table(readme) == readme, "stale: run `python scripts/generate-docs`"


def test_the_readme_provider_section_is_what_the_profiles_render() -> None:
    readme = (ROOT / "README.md").read_text()
    assert with_provider_section(readme) == readme, "stale: run `python scripts/generate-docs`"


def test_the_env_example_as_given_gives_the_defaults() -> None:
    example = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    assert load_settings(example) == load_settings({})


def test_every_setting_but_providers_and_groups_is_one_declared_variable() -> None:
    # Providers come from <PROVIDER>_* variables or the configuration file; groups from the file.
    declared = {spec.name for spec, _ in variables()}
    fields = {spec.name for spec in dataclasses.fields(Settings)}
    assert fields - declared == {"providers", "groups"}


def test_the_script_finds_nothing_stale() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate-docs"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
