"""Searcher plugins for decam (imported as ``decam_strategies``)."""
