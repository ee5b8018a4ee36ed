"""delta-diff
"""

__version__ = "0.1"
