"""A flytekit ImageSpec builder that builds through imagespec.

Importing this module (flytekit does, through the ``flytekit.plugins`` entry point) registers
the builder as ``imagespec``: ``ImageSpec(builder="imagespec", ...)`` builds with it, and so
does an ImageSpec without ``builder`` (the registered builder of highest priority wins).
``builder="default"`` stays flytekit's own builder.
"""

from flytekit.image_spec.image_spec import ImageBuildEngine

from .builder import BUILDER_NAME, PRIORITY, ImagespecImageBuilder
from .errors import ImagespecError

ImageBuildEngine.register(BUILDER_NAME, ImagespecImageBuilder(), priority=PRIORITY)

__all__ = ["BUILDER_NAME", "PRIORITY", "ImagespecImageBuilder", "ImagespecError"]
