"""Inference: a saved generator, loaded once and run fast on the machine at hand.

:mod:`.infer` is the one way in (:class:`~.infer.Sketch2Image`); :mod:`.fastpath`,
:mod:`.rewrite` and :mod:`.mixed` are the measured speed paths it picks from;
:mod:`.batching` serves many callers at once; :mod:`.memory` keeps the heap of a
many-threaded server.
"""
