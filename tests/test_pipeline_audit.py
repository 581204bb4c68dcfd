"""The run's audit step: on by default and reporting; cleaning, blocking and the report link."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from redditvision.backends.local import LocalBackend
from redditvision.cli import main
from redditvision.errors import ConfigError, DatasetError
from redditvision.pipeline import RunClients, RunConfig, run

CLASSES = ("BMW X3 SUV 2012", "BMW Z4 Convertible 2012")


@pytest.fixture
def photos(tmp_path: Path, bmw_photos: Path) -> tuple[Path, Path]:
    """Two classes of 10 real photos; the first X3 photo also sits, copied, under Z4.

    Returns (the folder, the copied photo's path under Z4).
    """
    root = tmp_path / "photos"
    for folder in CLASSES:
        (root / folder).mkdir(parents=True)
        for source in sorted((bmw_photos / folder).glob("*.jpg"))[:10]:
            (root / folder / source.name).write_bytes(source.read_bytes())
    first = sorted((root / CLASSES[0]).glob("*.jpg"))[0]
    copy = root / CLASSES[1] / f"copy-{first.name}"
    copy.write_bytes(first.read_bytes())
    return root, copy


def _clients(tmp_path: Path) -> RunClients:
    return RunClients(
        backend=LocalBackend(cache_dir=tmp_path / "cache", model_dir=tmp_path / "models")
    )


def test_the_audit_step_reports_by_default_and_the_report_links_it(
    tmp_path: Path, photos: tuple[Path, Path]
) -> None:
    root, copy = photos
    config = RunConfig.from_mapping(
        {"output": str(tmp_path / "run"), "source": {"images": str(root)}}
    )
    result = run(config, clients=_clients(tmp_path))

    steps = {step.name: step.status for step in result.steps}
    assert steps["audit"] == "ran"
    assert result.audit is not None
    # The copy under another label is found twice (both copies), and reporting only
    # changes nothing: all 21 images are written and trained on.
    assert result.audit["issues"]["duplicate_across_labels"] == 2
    assert "changes" not in result.audit
    assert result.dataset is not None and result.dataset.images == 21
    page = Path(result.audit["html"])
    assert page == config.output / "audit" / "audit.html"
    assert copy.name in page.read_text(encoding="utf-8")
    assert result.report_html is not None
    report = result.report_html.read_text(encoding="utf-8")
    assert 'href="../audit/audit.html"' in report
    assert f"flagged {result.audit['flagged']} of 21 labeled images" in report

    again = run(config, clients=_clients(tmp_path))
    assert {step.name: step.status for step in again.steps}["audit"] == "reused"


def test_audit_exclude_trains_on_the_cleaned_dataset_and_the_report_counts_it(
    tmp_path: Path, photos: tuple[Path, Path]
) -> None:
    root, copy = photos
    config = RunConfig.from_mapping(
        {
            "output": str(tmp_path / "run"),
            "source": {"images": str(root)},
            "audit": {"exclude": ["duplicate_across_labels"]},
        }
    )
    result = run(config, clients=_clients(tmp_path))

    assert result.audit is not None
    assert result.audit["changes"] == {"excluded:duplicate_across_labels": 2}
    assert result.audit["images_kept"] == 19
    # The write step wrote, and the model trained on, the cleaned dataset.
    assert result.dataset is not None and result.dataset.images == 19
    cleaned = (config.output / "audit" / "dataset.jsonl").read_text(encoding="utf-8")
    assert copy.name not in cleaned
    assert result.model is not None
    assert (
        result.model.metadata["training_images"] + result.model.metadata.get("validation_images", 0)
        <= 19
    )
    assert result.report_html is not None
    report = result.report_html.read_text(encoding="utf-8")
    table = report[report.index('id="audit-table"') :]
    assert "duplicate_across_labels" in table[: table.index("</table>")]

    # A relabeled record changes the labels, not the counts the write step reports: the
    # steps after the audit follow the cleaned dataset's bytes, so they train again.
    cleaned_file = config.output / "audit" / "dataset.jsonl"
    rows = [json.loads(line) for line in cleaned_file.read_text(encoding="utf-8").splitlines()]
    first, other = rows[0], next(row for row in rows if row["label"] != rows[0]["label"])
    first["label"], first["original_label"] = other["label"], other["original_label"]
    cleaned_file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    relabeled = run(config, clients=_clients(tmp_path))
    statuses = {step.name: step.status for step in relabeled.steps}
    assert statuses["audit"] == "reused"
    assert statuses["write"] == statuses["train"] == statuses["evaluate"] == "ran"

    # Turning the exclusion off re-runs the audit and every step after it.
    relaxed = config.with_overrides(audit__exclude=("split_leak",))
    again = run(relaxed, clients=_clients(tmp_path))
    statuses = {step.name: step.status for step in again.steps}
    assert statuses["label"] == "reused"
    assert statuses["audit"] == statuses["write"] == statuses["train"] == "ran"
    assert again.dataset is not None and again.dataset.images == 21


def test_audit_fail_on_stops_the_run_naming_the_issue_and_the_page(
    tmp_path: Path, photos: tuple[Path, Path]
) -> None:
    root, _ = photos
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["run", "--images", str(root), "--out", str(out), "--no-compare"],
        catch_exceptions=False,
        env={"XDG_CACHE_HOME": str(tmp_path / "xdg")},
    )
    assert result.exit_code == 0, result.output
    assert "audit:" in result.output and "duplicate_across_labels" in result.output

    config = RunConfig.from_mapping(
        {
            "output": str(tmp_path / "blocked"),
            "source": {"images": str(root)},
            "audit": {"fail_on": ["duplicate_across_labels"]},
        }
    )
    with pytest.raises(DatasetError, match=r"2 duplicate_across_labels.*audit\.html"):
        run(config, clients=_clients(tmp_path))
    assert not (config.output / "model").exists()


def test_the_cli_flags_switch_the_audit_off_or_make_it_exclude(
    tmp_path: Path, photos: tuple[Path, Path]
) -> None:
    root, _ = photos
    summary_of = []
    for flags in (["--no-audit"], ["--audit-exclude", "duplicate_across_labels"]):
        out = tmp_path / flags[0].strip("-")
        result = CliRunner().invoke(
            main,
            ["run", "--images", str(root), "--out", str(out), "--no-compare", "--json-summary",
             *flags],
            env={"XDG_CACHE_HOME": str(tmp_path / "xdg")},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        summary_of.append(json.loads(result.stdout.strip().splitlines()[-1]))
    off, excluding = summary_of
    assert off["audit"] is None and off["steps"]["audit"]["status"] == "skipped"
    assert off["images"] == 21
    assert excluding["audit"]["changes"] == {"excluded:duplicate_across_labels": 2}
    assert excluding["images"] == 19


def test_an_unknown_audit_issue_in_the_config_is_refused_naming_the_known_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"\[audit\].*unknown audit issue.*memes.*off_domain"):
        RunConfig.from_mapping(
            {"output": str(tmp_path), "source": {"images": str(tmp_path)},
             "audit": {"exclude": ["memes"]}}
        )  # fmt: skip


def test_without_the_local_extra_the_audit_says_so_and_the_run_goes_on_unless_asked(
    tmp_path: Path, photos: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from redditvision.errors import MissingDependencyError
    from redditvision.pipeline._context import StepContext
    from redditvision.pipeline.steps import audit

    root, _ = photos
    config = RunConfig.from_mapping(
        {"output": str(tmp_path / "run"), "source": {"images": str(root)}}
    )
    (config.output).mkdir()
    from redditvision.labels import label_folders
    from redditvision.split import split_dataset
    from redditvision.storage import write_local_dataset

    write_local_dataset(split_dataset(label_folders(root)), config.output / "labeled.jsonl")
    said: list[str] = []
    ctx = StepContext(
        config=config,
        clients=_clients(tmp_path),
        say=lambda _step, message: said.append(message),
        progress=lambda *_: None,
    )
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # as without the [local] extra
    monkeypatch.setitem(sys.modules, "cleanlab.outlier", None)
    outputs = audit(ctx)
    assert "pip install 'redditvision[local]'" in outputs["not_run"]
    assert said == [f"not run: {outputs['not_run']}"]

    asked = attrs.evolve(ctx, config=config.with_overrides(audit__exclude=("duplicate",)))
    with pytest.raises(MissingDependencyError, match=r"redditvision\[local\]"):
        audit(asked)
