"""Each replica of a sharded StatefulSet polls exactly its own organizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.cli import main
from notifier.config.models import Config
from notifier.service import open_runtime
from notifier.sharding import owns

ORGANIZERS = [f"org-{n}" for n in range(12)]


def _config(tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "state": {"path": str(tmp_path / "state.db")},
            "organizers": [
                {
                    "id": organizer,
                    "name": organizer,
                    "sources": [
                        {
                            "id": f"{organizer}-shotgun",
                            "provider": "shotgun",
                            "organizer_id": 1,
                            "token": "t",
                            "base_url": "http://127.0.0.1:9",
                            "allow_insecure_http": True,
                        }
                    ],
                }
                for organizer in ORGANIZERS
            ],
        }
    )


async def _polled(config: Config, shard: tuple[int, int] | None) -> set[str]:
    runtime = await open_runtime(config, shard=shard)
    try:
        return {scheduled.poller.settings.organizer for scheduled in runtime.sources}
    finally:
        await runtime.close()


async def test_replicas_split_the_organizers_without_overlap(tmp_path: Path) -> None:
    """Three replicas poll disjoint sets whose union is every organizer."""
    config = _config(tmp_path)
    shares = [await _polled(config, (ordinal, 3)) for ordinal in range(3)]
    assert set().union(*shares) == set(ORGANIZERS)
    assert sum(len(share) for share in shares) == len(ORGANIZERS)
    for ordinal, share in enumerate(shares):
        assert share == {o for o in ORGANIZERS if owns(o, ordinal=ordinal, shard_count=3)}


async def test_an_unsharded_replica_polls_everything(tmp_path: Path) -> None:
    """Without sharding settings one process owns every organizer."""
    assert await _polled(_config(tmp_path), None) == set(ORGANIZERS)


def test_a_bad_shard_setting_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ordinal beyond the replica count is a configuration error, exit 1."""
    config = tmp_path / "notifier.yaml"
    config.write_text(
        "organizers:\n  - id: a\n    name: A\n    sources:\n"
        "      - {id: s, provider: shotgun, organizer_id: 1, token: t}\n"
    )
    monkeypatch.setenv("NOTIFIER_SHARD_COUNT", "2")
    monkeypatch.setenv("NOTIFIER_SHARD_ORDINAL", "5")
    assert main(["run", "-c", str(config)]) == 1
    assert "sharding:" in capsys.readouterr().err
