"""Training: from a folder of pairs (or photos) to a model.

:mod:`.trainer` runs the loop over :mod:`.objective`; :mod:`.data` and :mod:`.dataset` read
the folders; :mod:`.hints` samples colour hints; :mod:`.run_folder` writes what a run leaves
behind; :mod:`.evaluate` and :mod:`.metrics` judge a model.
"""
