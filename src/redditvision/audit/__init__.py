"""The data audit: label errors, off-domain images, duplicates and image issues.

Reddit photos are noisy (angles, interiors, memes, other cars) and few; that is what sank
the original project's first model. :func:`audit_dataset` looks at a labeled dataset the
way a careful data scientist would and ranks what it finds for review;
:func:`write_audit` writes ``audit.html``, ``audit.csv`` and ``audit.jsonl``;
:meth:`AuditReport.cleaned` gives the dataset without (or relabeling) what was found.

Needs the ``[local]`` extra (torch for the embeddings, scikit-learn and cleanlab).
"""

from __future__ import annotations

from redditvision.audit._image_checks import ImageQuality, ImageQualityIssue, measure_image
from redditvision.audit._run import REVIEW_ORDER, audit_dataset
from redditvision.audit._scoring import Scores, score_embeddings
from redditvision.audit._types import ACTIONS, ISSUE_KINDS, AuditFinding, AuditReport
from redditvision.audit._write import CSV_COLUMNS, AuditFiles, write_audit

__all__ = [
    "ACTIONS",
    "CSV_COLUMNS",
    "ISSUE_KINDS",
    "REVIEW_ORDER",
    "AuditFiles",
    "AuditFinding",
    "AuditReport",
    "ImageQuality",
    "ImageQualityIssue",
    "Scores",
    "audit_dataset",
    "measure_image",
    "score_embeddings",
    "write_audit",
]
