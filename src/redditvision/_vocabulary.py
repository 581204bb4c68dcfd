"""Which words of a generic label are generic, and which name a class: the comparison's data.

:class:`Vocabulary` holds the words (the default :data:`CAR_TERMS` suits cars; a label map's
``[vocabulary]`` table supplies others); :func:`class_phrases` and the private matcher turn
class names into the phrases a generic label must contain to name the class. Re-exported by
:mod:`redditvision.compare`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from redditvision.errors import ConfigError

__all__ = [
    "CAR_TERMS",
    "DEFAULT_GENERIC_TERMS",
    "DEFAULT_VOCABULARY",
    "Vocabulary",
    "class_phrases",
]


CAR_TERMS: tuple[str, ...] = (
    "car",
    "cars",
    "vehicle",
    "automobile",
    "auto",
    "automotive",
    "motor",
    "sedan",
    "saloon",
    "coupe",
    "convertible",
    "cabriolet",
    "roadster",
    "wagon",
    "estate",
    "hatchback",
    "suv",
    "crossover",
    "jeep",
    "minivan",
    "limousine",
    "cab",
    "racer",
    "race",
    "taxicab",
    "taxi",
    "pickup",
    "truck",
    "van",
    "minibus",
    "grille",
    "wheel",
    "rim",
    "tire",
    "tyre",
    "bumper",
    "hood",
    "headlamp",
    "headlight",
)
"""The packaged default generic words: a kind of vehicle or a car part, not a model.

A generic label holding one of these words counts as "only generic" in a comparison when no
label names a class: Cloud Vision's "Car", "Vehicle", "Luxury vehicle", "Tire", ImageNet's
"sports car", "convertible", "station wagon", "radiator grille". They suit classes of cars
(the project's BMW example); for other subjects give a :class:`Vocabulary` of your own, e.g.
from a label map's ``[vocabulary]`` table (:meth:`Vocabulary.from_toml`).
"""

DEFAULT_GENERIC_TERMS = CAR_TERMS
"""The default of :attr:`Vocabulary.generic_terms`: :data:`CAR_TERMS`."""


def _word_tuple(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(words)


def _optional_words(words: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if words is None else tuple(words)


@attrs.frozen(kw_only=True)
class Vocabulary:
    """The words that relate generic labels to classes: data, not code.

    Attributes:
        generic_terms: Words that name only a kind of thing ("car", "convertible", "tire"),
            matched case-insensitively as whole words; default :data:`CAR_TERMS`.
        make_terms: Words that name the make or family every class shares ("bmw"); None
            (default) finds them by themselves: the words every class name or alias shares.

    Example:
        >>> Vocabulary(generic_terms=("bird", "songbird", "feather"))
        Vocabulary(generic_terms=('bird', 'songbird', 'feather'), make_terms=None)
    """

    generic_terms: tuple[str, ...] = attrs.field(default=CAR_TERMS, converter=_word_tuple)
    make_terms: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_words)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, source: str = "vocabulary") -> Vocabulary:
        """Build a vocabulary from a ``[vocabulary]`` table.

        Keys (all optional): ``generic_terms`` (a list of words replacing the default
        :data:`CAR_TERMS`), ``extra_generic_terms`` (words added to the default, or to
        ``generic_terms`` when both are given), ``make_terms`` (words naming the make).

        Args:
            table: The table as TOML or JSON gives it.
            source: Where the table comes from, for errors (default ``"vocabulary"``).

        Returns:
            The vocabulary.

        Raises:
            ConfigError: An unknown key, or a value that is not a list of strings.
        """
        known = {"generic_terms", "extra_generic_terms", "make_terms"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; use generic_terms, "
                "extra_generic_terms or make_terms"
            )

        def words(key: str) -> tuple[str, ...] | None:
            value = table.get(key)
            if value is None:
                return None
            if not isinstance(value, list) or not all(
                isinstance(word, str) and word.strip() for word in value
            ):
                raise ConfigError(
                    f'{source}: {key} must be a list of words, e.g. {key} = ["car", "vehicle"]'
                )
            return tuple(word.strip() for word in value)

        generic = words("generic_terms")
        extra = words("extra_generic_terms") or ()
        base = CAR_TERMS if generic is None else generic
        return cls(
            generic_terms=(*base, *(word for word in extra if word not in base)),
            make_terms=words("make_terms"),
        )

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read the ``[vocabulary]`` table of a TOML file, e.g. a label map.

        A file without the table gives the default vocabulary, so any label map works::

            [labels]
            "z3-4-8" = ["BMW Z3 *", "BMW Z4 *"]

            [vocabulary]
            extra_generic_terms = ["racing car", "grille"]

        Args:
            path: The TOML file.

        Returns:
            The vocabulary (see :meth:`from_mapping` for the keys).

        Raises:
            ConfigError: The file cannot be read, is not TOML, or the table is malformed.
        """
        file = Path(path)
        try:
            with file.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from exc
        table = data.get("vocabulary", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: [vocabulary] must be a table of word lists")
        return cls.from_mapping(table, source=f"{file} [vocabulary]")


DEFAULT_VOCABULARY = Vocabulary()
"""The packaged default: :data:`CAR_TERMS`, make words found by themselves."""

_TOKEN = re.compile(r"[0-9a-z]+")
_YEAR = re.compile(r"^(18|19|20)\d\d$")


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.casefold()))


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    width = len(needle)
    return any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))


def class_phrases(name: str, *, drop: Iterable[str] = CAR_TERMS) -> tuple[str, ...]:
    """Return the words of a class name that identify the model, as one phrase.

    The name is split into lower-case words of letters and digits; the generic words
    (``drop``) and years (``2012``) are removed. "BMW Z4 Convertible 2012" gives
    ``("z4",)`` once "bmw" is among ``drop``; "BMW 3 Series Sedan 2012" gives
    ``("3 series",)``. A phrase of digits only, or nothing left, gives ``()``: such a class
    is never matched by words.

    Args:
        name: A class name or alias.
        drop: Words to remove (default :data:`CAR_TERMS`).

    Returns:
        Zero or one phrase (words joined by single spaces).
    """
    dropped = {word.casefold() for word in drop}
    words = _tokens(name)
    kept = [word for word in words if word not in dropped and not _YEAR.match(word)]
    if not kept or all(word.isdigit() for word in kept):
        return ()
    return (" ".join(kept),)


class _Matcher:
    """Phrases per class and the generic words, built once per comparison."""

    def __init__(
        self,
        classes: Iterable[str],
        aliases: Mapping[str, Iterable[str]],
        vocabulary: Vocabulary,
    ) -> None:
        generic_terms = vocabulary.generic_terms
        sources: dict[str, list[str]] = {}
        for name in classes:
            sources.setdefault(name, [name])
        for name, names in aliases.items():
            sources.setdefault(name, [name]).extend(names)
        # The make: words that every long name shares ("bmw" in "BMW Z4 Convertible 2012").
        long_names = [alias for names in aliases.values() for alias in names] or list(sources)
        common: set[str] = set()
        if vocabulary.make_terms is not None:
            common = {word.casefold() for word in vocabulary.make_terms}
        elif len(long_names) >= 2:
            common = set(_tokens(long_names[0]))
            for alias in long_names[1:]:
                common &= set(_tokens(alias))
            common = {word for word in common if not word.isdigit()}
        self.make_terms = tuple(sorted(common))
        self.generic_terms = tuple(
            _tokens(term) for term in {*generic_terms, *self.make_terms} if _tokens(term)
        )
        drop = [" ".join(term) for term in self.generic_terms]
        self.phrases: dict[str, tuple[tuple[str, ...], ...]] = {}
        for name, names in sources.items():
            phrases = {
                _tokens(phrase) for source in names for phrase in class_phrases(source, drop=drop)
            }
            self.phrases[name] = tuple(sorted(phrases))

    def named_classes(self, texts: Iterable[str]) -> tuple[str, ...]:
        tokenized = [_tokens(text) for text in texts]
        return tuple(
            sorted(
                name
                for name, phrases in self.phrases.items()
                if any(_contains(words, phrase) for words in tokenized for phrase in phrases)
            )
        )

    def is_generic(self, texts: Iterable[str]) -> bool:
        return any(_contains(_tokens(text), term) for text in texts for term in self.generic_terms)
