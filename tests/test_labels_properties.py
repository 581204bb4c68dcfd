"""Property-based tests of the parsers of outside input that labels/ and storage/ own (issue 12).

Label maps (TOML), label CSVs, rules files and dataset files (``dataset.jsonl``): random and
mutated inputs give either a result or the library's own :class:`~redditvision.DatasetError`,
never another exception.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from redditvision import DatasetError, LabeledDataset
from redditvision.labels import LabelMap, RuleSet, label_csv
from redditvision.storage import load_local_dataset

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_VALID_MAP = '[labels]\n"3-4series" = ["BMW 3 Series *", "BMW M3 *"]\nz = "BMW Z4 *"\n'
_VALID_RULES = '[[rules]]\nlabel = "z3-4-8"\ntitle = \'(?i)\\bZ[348]\\b\'\nflair = "Z"\n'


def _mutations(seed: str) -> st.SearchStrategy[bytes]:
    """The seed document with bytes deleted, replaced and inserted, or random bytes."""
    data = seed.encode()

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            kind = draw(st.sampled_from(["delete", "replace", "insert"]))
            at = draw(st.integers(0, max(len(out) - 1, 0)))
            if kind == "delete" and out:
                del out[at]
            elif kind == "replace" and out:
                out[at] = draw(st.integers(0, 255))
            else:
                out[at:at] = draw(st.binary(min_size=1, max_size=8))
        return bytes(out)

    return st.one_of(mutate(), st.binary(max_size=200))


@contextlib.contextmanager
def _written(data: bytes, name: str) -> Iterator[Path]:
    """The bytes in a file of a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rv-prop-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


@SETTINGS
@given(_mutations(_VALID_MAP))
@example(b"labels = 5")
@example(b"[labels]\na = []\n")
@example(b"[labels]\na = [1, 2]\n")
@example(b"a = " + b"[" * 3000 + b"]" * 3000)
@example(b"\xff\xfe[labels]")
def test_label_map_files_parse_or_raise_dataset_error(data: bytes) -> None:
    with _written(data, "map.toml") as path:
        try:
            label_map = LabelMap.from_toml(path)
        except DatasetError:
            return
    for target, patterns in label_map.targets:
        assert isinstance(target, str)
        assert patterns
        assert all(isinstance(pattern, str) for pattern in patterns)
    assert label_map.label_for("BMW M3 Coupe 2012") in {None, *dict(label_map.targets)}


@SETTINGS
@given(_mutations(_VALID_RULES))
@example(b'[[rules]]\nlabel = "x"\ntitle = "' + b"(" * 400 + b")" * 400 + b'"\n')
@example(b'[[rules]]\nlabel = "x"\ntitle = "a{99999999999}"\n')
@example(b'[[rules]]\nlabel = "x"\ntitle = 3\n')
@example(b"rules = [1]")
def test_rules_files_parse_or_raise_dataset_error(data: bytes) -> None:
    with _written(data, "rules.toml") as path:
        try:
            rules = RuleSet.from_toml(path)
        except DatasetError:
            return
    assert rules.rules
    rules.match(title="My Z4 at the track", flair="Z", subreddit="BMW")


_CELLS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "img/a.png",
            "/etc/passwd",
            "../../secret",
            "file:///etc/passwd",
            "file://host/a.png",
            "gs://b/a.png",
            "a\x00b",
            "x" * 5000,
            "=cmd",
            "'=cmd",
            "",
        ]
    ),
)


@SETTINGS
@given(
    st.lists(st.lists(_CELLS, min_size=0, max_size=4), max_size=6),
    st.booleans(),
    st.sampled_from(["error", "skip"]),
)
def test_label_csvs_parse_or_raise_dataset_error(
    rows: list[list[str]], header: bool, missing: str
) -> None:
    lines = (["path,label"] if header else []) + [
        ",".join('"' + cell.replace('"', '""') + '"' for cell in row) for row in rows
    ]
    text = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    with _written(text, "labels.csv") as path:
        (path.parent / "img").mkdir()
        Image.new("RGB", (4, 4), "red").save(path.parent / "img" / "a.png")
        try:
            dataset = label_csv(path, missing="skip" if missing == "skip" else "error")
        except DatasetError:
            return
        assert isinstance(dataset, LabeledDataset)
        for image in dataset.images:
            assert image.path.resolve().is_relative_to(path.parent.resolve())


@SETTINGS
@given(_mutations(_VALID_MAP.replace("\n", ",")))
@example(b"\xff\xfe\x00")
@example(b"a" * 200_000)
def test_label_csvs_of_random_bytes_parse_or_raise_dataset_error(data: bytes) -> None:
    with _written(data, "labels.csv") as path:
        try:
            label_csv(path)
        except DatasetError:
            return


_LINE = json.dumps(
    {
        "path": "a.png",
        "label": "a",
        "original_label": "A",
        "ml_use": "training",
        "sha256": "0" * 64,
        "group": "g",
        "source": "s",
    }
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["training", "validation", "test", "unknown", "a\x00b"]),
)
_KEYS = st.sampled_from(["path", "label", "original_label", "ml_use", "sha256", "group", "source"])


@SETTINGS
@given(st.lists(st.dictionaries(_KEYS, _VALUES, max_size=7), max_size=5))
def test_dataset_files_with_random_fields_parse_or_raise_dataset_error(
    lines: list[dict[str, object]],
) -> None:
    text = "\n".join(json.dumps(line) for line in lines).encode()
    with _written(text, "dataset.jsonl") as path:
        try:
            dataset = load_local_dataset(path)
        except DatasetError:
            return
    for image in dataset.images:
        assert isinstance(image.label, str) and image.label
        assert image.sha256 is None or isinstance(image.sha256, str)


@SETTINGS
@given(_mutations(_LINE + "\n" + _LINE.replace('"a"', '"b"') + "\n"))
@example(b"[" * 100_000)
@example(b'{"path": "a.png", "label": "a", "ml_use": ["x"]}')
def test_mutated_dataset_files_parse_or_raise_dataset_error(data: bytes) -> None:
    with _written(data, "dataset.jsonl") as path:
        try:
            load_local_dataset(path)
        except DatasetError:
            return
