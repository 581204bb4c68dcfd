"""The audit's value types: one finding per image and issue, and the report over a dataset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from redditvision.errors import ConfigError
from redditvision.models import LabeledDataset, LabeledImage

__all__ = ["ACTIONS", "ISSUE_KINDS", "AuditFinding", "AuditReport"]

ISSUE_KINDS: Mapping[str, str] = {
    "label_error": "the label is probably wrong (confident learning on out-of-fold predictions)",
    "off_domain": "not the subject at all: far from every other image in embedding space",
    "duplicate_across_labels": "the same photo (or a near-duplicate) under another label",
    "split_leak": "the same photo (or a near-duplicate) in another split",
    "duplicate": "a second copy of a photo already in the dataset under the same label",
    "undecodable": "the file cannot be decoded as an image",
    "blurry": "out of focus or motion-blurred",
    "dark": "too dark to show its subject",
    "overexposed": "blown out: most pixels at full brightness",
    "tiny": "too small to tell the classes apart",
    "odd_aspect_ratio": "a strip: banner, screenshot or panorama",
    "low_information": "little to see: a flat color or a mostly empty picture",
}
"""Every issue the audit reports, with what it means (shown in ``audit.html``)."""

ACTIONS: Mapping[str, str] = {
    "relabel": "change the label to the suggested one",
    "exclude": "leave the image out of the dataset",
    "review": "look at it: keep, relabel or exclude",
}
"""The suggested actions."""


@attrs.frozen(kw_only=True)
class AuditFinding:
    """One issue found for one image.

    Attributes:
        path: The image file.
        label: The image's label in the user's own name.
        issue: A key of :data:`ISSUE_KINDS`.
        score: Severity in ``[0, 1]``; higher is more certainly a problem. For
            ``label_error`` it is one minus the out-of-fold probability of the given label;
            for ``off_domain`` the outlier score scaled so that 0.5 is the flagging threshold.
        action: A key of :data:`ACTIONS`.
        reason: Why, for people: the measurement, the generic labeler's words, the other copy.
        suggested_label: For ``label_error``: the label the model believes, user's name.
        ml_use: The image's split (``training``, ``validation``, ``test``) or None.
        sha256: The file's SHA-256 when known.
        related: Paths of the other images involved (duplicates).
    """

    path: Path
    label: str
    issue: str
    score: float
    action: str
    reason: str
    suggested_label: str | None = None
    ml_use: str | None = None
    sha256: str | None = None
    related: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, object]:
        """Return the JSON form written to ``audit.jsonl`` (one object per line).

        Returns:
            ``path`` (str), ``label``, ``issue``, ``score`` (rounded to 4 digits),
            ``action``, ``reason``, ``suggested_label``, ``ml_use``, ``sha256`` and
            ``related`` (list of str).
        """
        return {
            "path": str(self.path),
            "label": self.label,
            "issue": self.issue,
            "score": round(self.score, 4),
            "action": self.action,
            "reason": self.reason,
            "suggested_label": self.suggested_label,
            "ml_use": self.ml_use,
            "sha256": self.sha256,
            "related": [str(p) for p in self.related],
        }


@attrs.frozen(kw_only=True)
class AuditReport:
    """What the audit found in one labeled dataset.

    Attributes:
        dataset: The audited dataset.
        findings: Every finding, most severe first.
        label_counts: Images per label (user's names), before cleaning.
        limit_issues: Problems of the per-label counts against the chosen target's limits
            (messages from the dataset checks).
        target: The backend whose limits were checked.
        method: How label errors and outliers were scored, for the report.
    """

    dataset: LabeledDataset
    findings: tuple[AuditFinding, ...]
    label_counts: Mapping[str, int]
    limit_issues: tuple[str, ...] = ()
    target: str = "local"
    method: Mapping[str, object] = attrs.field(factory=dict)

    def counts(self) -> dict[str, int]:
        """Return the number of findings per issue kind (kinds with none are left out)."""
        out: dict[str, int] = {}
        for finding in self.findings:
            out[finding.issue] = out.get(finding.issue, 0) + 1
        return out

    def flagged(self) -> list[Path]:
        """Return each flagged image once, most severe first (the order to review in).

        Returns:
            Paths, ordered by each image's most severe finding.
        """
        seen: dict[Path, None] = {}
        for finding in self.findings:
            seen.setdefault(finding.path, None)
        return list(seen)

    def cleaned(
        self, *, exclude: Iterable[str] = (), relabel: bool = False
    ) -> tuple[LabeledDataset, dict[str, int]]:
        """Return the dataset without the images of the given issues, optionally relabeled.

        Args:
            exclude: Issue kinds whose images are left out (e.g. ``["off_domain",
                "duplicate"]``); a ``duplicate`` finding drops only the second copy.
            relabel: Give ``label_error`` images whose action is ``relabel`` (a confident
                suggestion) their suggested label, unless excluded.

        Returns:
            (the cleaned dataset, counts ``{"excluded:<issue>": n, "relabeled": n}``).

        Raises:
            ConfigError: An unknown issue kind, naming the known ones.
        """
        kinds = set(exclude)
        unknown = sorted(kinds - set(ISSUE_KINDS))
        if unknown:
            raise ConfigError(
                f"unknown audit issue(s) {', '.join(unknown)}: choose from {', '.join(ISSUE_KINDS)}"
            )
        drop: dict[Path, str] = {}
        for finding in self.findings:
            if finding.issue in kinds and finding.path not in drop:
                drop[finding.path] = finding.issue
        suggestions = {
            f.path: f.suggested_label
            for f in self.findings
            if relabel
            and f.issue == "label_error"
            and f.action == "relabel"
            and f.suggested_label is not None
        }
        by_original = {original: service for service, original in self.dataset.label_map.items()}
        stats: dict[str, int] = {}
        images: list[LabeledImage] = []
        for image in self.dataset.images:
            if image.path in drop:
                key = f"excluded:{drop[image.path]}"
                stats[key] = stats.get(key, 0) + 1
                continue
            new = suggestions.get(image.path)
            if new is not None and new != image.original_label and new in by_original:
                image = attrs.evolve(image, label=by_original[new], original_label=new)
                stats["relabeled"] = stats.get("relabeled", 0) + 1
            images.append(image)
        return attrs.evolve(self.dataset, images=tuple(images)), stats
