"""Figures for reports and kedro-viz (matplotlib figures, saved by the catalog)."""
