"""Searcher plugins for decam (imported as ``decam_strategies``)."""

import warnings

with warnings.catch_warnings():  # evotorch 0.6.1 calls the deprecated torch.jit.script when first imported
    warnings.simplefilter("ignore", FutureWarning)
    import evotorch  # noqa: F401
