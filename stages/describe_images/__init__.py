"""The ``describe_images`` stage: images bound for a model without vision become a vision model's
description of them (``stage``), described once per image (``cache``)."""

from stages.describe_images.stage import DescribeImages

__all__ = ["DescribeImages"]
