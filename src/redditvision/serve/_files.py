"""A small image file server for Label Studio: one folder's images over HTTP on loopback.

Label Studio opens a task's image in the labeler's browser from the URL in the task. Without
its local files storage set up, ``redditvision label-studio export --image-url http
--base-url URL`` writes URLs below ``URL``, and this server answers them: Starlette's
``StaticFiles`` over the document root (it refuses paths that leave the root, symlinks that
point outside it included), GET and HEAD only, image files only, with the CORS header Label
Studio's frontend needs to read images from another origin.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from redditvision.errors import ConfigError, MissingDependencyError

__all__ = ["IMAGE_SUFFIXES", "create_image_app"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
"""File name suffixes the image server answers (case-insensitive); anything else is 404."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def create_image_app(root: str | os.PathLike[str], *, allow_origin: str = "*") -> Any:
    """Return an ASGI app serving the images under ``root`` (needs the ``[serve]`` extra).

    ``GET /PATH`` answers the file ``root/PATH`` when it is an image (:data:`IMAGE_SUFFIXES`)
    inside ``root``; other files, folders and paths that leave ``root`` (``..``, absolute
    paths, symlinks pointing outside) are 404. Every answer carries
    ``Access-Control-Allow-Origin: allow_origin``.

    Args:
        root: The document root: the folder the exported URLs are relative to.
        allow_origin: The CORS origin allowed to read the images (default ``*``; set
            Label Studio's URL, e.g. ``http://127.0.0.1:8080``, to allow only it).

    Returns:
        A Starlette app.

    Raises:
        ConfigError: ``root`` is not a folder.
        MissingDependencyError: The ``[serve]`` extra is not installed.
    """
    try:
        from starlette.applications import Starlette
    except ImportError as exc:  # pragma: no cover - the [serve] extra is missing
        raise MissingDependencyError(
            "the image server needs the [serve] extra: pip install 'redditvision[serve]'"
        ) from exc
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    folder = Path(root)
    if not folder.is_dir():
        raise ConfigError(f"image folder {folder} does not exist; pass the document root folder")
    files = StaticFiles(directory=folder, html=False, follow_symlink=False)

    async def images_only(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
            response = PlainTextResponse("Not Found", status_code=404)
            await response(scope, receive, send)
            return
        await files(scope, receive, send)

    return Starlette(
        routes=[Mount("/", app=images_only)],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=[allow_origin],
                allow_methods=["GET", "HEAD"],
            )
        ],
    )
