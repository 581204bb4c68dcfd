"""Label downloaded records with ordered regular expressions over title, flair and subreddit."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from redditvision.errors import DatasetError
from redditvision.labels._folders import read_toml
from redditvision.labels._names import with_label_map
from redditvision.models import ImageRecord, LabeledDataset, RecordStatus

__all__ = ["LabelingReport", "Rule", "RuleSet", "label_records"]


@attrs.frozen(kw_only=True)
class Rule:
    """One labeling rule: a label and regular expressions over a record's text fields.

    A rule matches when every pattern it has matches (``re.search``) its field; a missing
    field (no flair) never matches a pattern. Patterns are Python regular expressions;
    write ``(?i)`` for case-insensitive matching.

    Attributes:
        label: The label given on a match (the user's name; normalized later).
        title: Pattern over the submission title, or None.
        flair: Pattern over the link flair text, or None.
        subreddit: Pattern over the subreddit name, or None.
        name: How the rule is named in errors and reports (default ``"rule N (label)"``).
    """

    label: str
    title: re.Pattern[str] | None = None
    flair: re.Pattern[str] | None = None
    subreddit: re.Pattern[str] | None = None
    name: str = ""

    def matches(self, *, title: str, flair: str | None, subreddit: str) -> bool:
        """Tell whether this rule matches a record's fields.

        Args:
            title: The submission title.
            flair: The link flair text, or None.
            subreddit: The subreddit name.

        Returns:
            True when every pattern of the rule matches.
        """
        checks = ((self.title, title), (self.flair, flair), (self.subreddit, subreddit))
        for pattern, value in checks:
            if pattern is None:
                continue
            if value is None or pattern.search(value) is None:
                return False
        return True


@attrs.frozen
class RuleSet:
    r"""Ordered labeling rules; the first rule that matches a record gives its label.

    Written in TOML as an array of ``[[rules]]`` tables, each with a ``label`` and at
    least one of ``title``, ``flair``, ``subreddit`` (regular expressions)::

        [[rules]]
        label = "z3-4-8"
        title = '(?i)\bZ[348]\b'

    Attributes:
        rules: The rules in priority order.
    """

    rules: tuple[Rule, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "rules") -> RuleSet:
        """Build a rule set from parsed TOML (``{"rules": [{...}, ...]}``).

        Args:
            data: The parsed document.
            source: Name of the document for error messages (e.g. the file path).

        Returns:
            The rule set.

        Raises:
            DatasetError: No rules; a rule without ``label`` or without any pattern; an
                unknown key; an invalid regular expression (the message names the rule,
                the field and the regex error).
        """
        raw = data.get("rules")
        if not isinstance(raw, list) or not raw:
            raise DatasetError(
                f"{source} has no [[rules]]; write one [[rules]] table per rule with a "
                "label and a title, flair or subreddit pattern"
            )
        rules: list[Rule] = []
        for number, entry in enumerate(raw, start=1):
            if not isinstance(entry, dict):
                raise DatasetError(f"{source}: rule {number} is not a table")
            label = entry.get("label")
            rule_name = str(entry.get("name") or f"rule {number} ({label})")
            if not isinstance(label, str) or not label.strip():
                raise DatasetError(f"{source}: {rule_name} has no label")
            unknown = set(entry) - {"label", "title", "flair", "subreddit", "name"}
            if unknown:
                raise DatasetError(
                    f"{source}: {rule_name} has unknown key(s) {', '.join(sorted(unknown))}; "
                    "allowed: label, title, flair, subreddit, name"
                )
            compiled: dict[str, re.Pattern[str] | None] = {}
            for field in ("title", "flair", "subreddit"):
                pattern = entry.get(field)
                if pattern is None:
                    compiled[field] = None
                    continue
                if not isinstance(pattern, str):
                    raise DatasetError(f"{source}: {rule_name} field {field} must be a string")
                try:
                    compiled[field] = re.compile(pattern)
                except re.error as exc:
                    raise DatasetError(
                        f"{source}: {rule_name} has an invalid {field} regex {pattern!r}: {exc}"
                    ) from exc
            if all(value is None for value in compiled.values()):
                raise DatasetError(
                    f"{source}: {rule_name} has no pattern; give title, flair or subreddit"
                )
            rules.append(Rule(label=label.strip(), name=rule_name, **compiled))
        return cls(tuple(rules))

    @classmethod
    def from_toml(cls, path: str | Path) -> RuleSet:
        """Read rules from a TOML file of ``[[rules]]`` tables.

        Args:
            path: The file.

        Returns:
            The rule set.

        Raises:
            DatasetError: The file cannot be read or parsed, or a rule is invalid (see
                :meth:`from_mapping`).
        """
        return cls.from_mapping(read_toml(Path(path)), source=str(path))

    def match(self, *, title: str, flair: str | None, subreddit: str) -> Rule | None:
        """Return the first rule that matches, or None.

        Args:
            title: The submission title.
            flair: The link flair, or None.
            subreddit: The subreddit name.

        Returns:
            The winning rule, or None.
        """
        for rule in self.rules:
            if rule.matches(title=title, flair=flair, subreddit=subreddit):
                return rule
        return None


@attrs.frozen(kw_only=True)
class LabelingReport:
    """What a labeler did with each input that did not become a labeled image.

    Attributes:
        labeled: Number of images labeled.
        per_rule: Rule name -> images it labeled, in rule order.
        unmatched: Records no rule matched (``ok`` records with a file).
        not_ok: Records left out because their status is not ``ok`` or they have no file.
    """

    labeled: int
    per_rule: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    unmatched: tuple[ImageRecord, ...] = ()
    not_ok: tuple[ImageRecord, ...] = ()


def label_records(
    records: Iterable[ImageRecord],
    rules: RuleSet,
    *,
    normalize: bool = True,
    name: str = "redditvision",
) -> tuple[LabeledDataset, LabelingReport]:
    """Label downloaded records with ordered rules over title, flair and subreddit.

    Only ``ok`` records with a file are labeled; the others are reported in
    :attr:`LabelingReport.not_ok`. Records no rule matches are reported in
    :attr:`LabelingReport.unmatched`, never silently dropped. An image's ``group`` is the
    record's ``near_duplicate_group`` (from the download step's perceptual hashes), else
    its SHA-256.

    Args:
        records: Records from the download step (e.g. ``ImageManifest.records("ok")``).
        rules: The rules.
        normalize: Map invalid label names through :func:`normalize_label` (default).
        name: Dataset display name.

    Returns:
        The unsplit dataset (in record order; source = record key) and the report. The
        dataset may be empty; :func:`~redditvision.checks.check_dataset` reports that.

    Raises:
        DatasetError: Labels are invalid (``normalize=False``) or clash.
    """
    entries: list[tuple[Path, str, str | None, str | None, str | None]] = []
    per_rule: dict[str, int] = {rule.name: 0 for rule in rules.rules}
    unmatched: list[ImageRecord] = []
    not_ok: list[ImageRecord] = []
    for record in records:
        if record.status is not RecordStatus.OK or record.path is None:
            not_ok.append(record)
            continue
        rule = rules.match(title=record.title, flair=record.flair_text, subreddit=record.subreddit)
        if rule is None:
            unmatched.append(record)
            continue
        per_rule[rule.name] += 1
        group = record.near_duplicate_group or record.sha256
        entries.append((Path(record.path), rule.label, record.sha256, group, record.key))
    dataset = with_label_map(entries, normalize=normalize, name=name)
    report = LabelingReport(
        labeled=len(entries), per_rule=per_rule, unmatched=tuple(unmatched), not_ok=tuple(not_ok)
    )
    return dataset, report
