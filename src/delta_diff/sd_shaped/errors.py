"""The one error type of the SD-shaped builder."""


class SdShapedError(ValueError):
    """An input the SD-shaped builder cannot use (variant, width, output folder, missing package); says why."""
