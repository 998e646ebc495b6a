"""The config examples of the documentation load: a reader who copies one gets a working file."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from notifier.config import load_config
from notifier.config.sources import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/configuration.md")
# A valid webhook secret is also a valid token, key or password: one value fits every ${VAR}.
SECRET = "whsec_" + base64.b64encode(b"documentation-example-key").decode()


def config_blocks(document: str) -> list[str]:
    """The YAML blocks of a document that are whole config files."""
    text = (ROOT / document).read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    return [block for block in blocks if "organizers:" in block]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_config_example_loads_and_covers_every_provider(
    document: str, tmp_path: Path
) -> None:
    """Each example loads once its variables are set, and each reads all four providers."""
    blocks = config_blocks(document)
    assert blocks, f"{document} lost its config example"
    for block in blocks:
        path = tmp_path / "notifier.yaml"
        path.write_text(block)
        env = {name: SECRET for name in re.findall(r"\$\{([A-Z0-9_]+)", block)}
        config = load_config(path, env)
        assert sorted(source.provider for _, source in config.sources()) == sorted(PROVIDERS)
        assert config.state.path == tmp_path / "notifier-state.db"
