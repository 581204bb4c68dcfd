"""Labels: label names, label maps and the three labelers. Knows nothing of any cloud.

Labelers, each producing an unsplit :class:`~redditvision.models.LabeledDataset`:

* :func:`label_folders`: label = folder name, optionally grouped and renamed by a
  :class:`LabelMap` (TOML ``[labels]``: target label -> glob patterns over folder names);
* :func:`label_csv`: ``path,label`` rows, the hand-labeling workflow with
  :func:`export_label_csv`;
* :func:`label_records`: ordered regular expressions (:class:`RuleSet`) over the title,
  flair and subreddit of downloaded :class:`~redditvision.models.ImageRecord` objects.

Label names must pass both Vertex AI and legacy AutoML: ``^[A-Za-z][A-Za-z0-9_]{0,31}$``
(:data:`LABEL_PATTERN`). :func:`normalize_label` maps any name to one that passes; the
mapping (service label -> the user's original) is kept in
:attr:`~redditvision.models.LabeledDataset.label_map` so predictions can be shown in the
user's names.

Then :mod:`redditvision.split` splits the dataset without leaks, :mod:`redditvision.checks`
checks it against a backend's limits, and :mod:`redditvision.storage` writes it out.
"""

from redditvision.labels._csv_labels import export_label_csv, label_csv
from redditvision.labels._folders import IMAGE_SUFFIXES, LabelMap, label_folders
from redditvision.labels._names import LABEL_PATTERN, map_labels, normalize_label
from redditvision.labels._rules import LabelingReport, Rule, RuleSet, label_records

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_PATTERN",
    "LabelMap",
    "LabelingReport",
    "Rule",
    "RuleSet",
    "export_label_csv",
    "label_csv",
    "label_folders",
    "label_records",
    "map_labels",
    "normalize_label",
]
