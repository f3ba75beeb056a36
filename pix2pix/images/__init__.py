"""Pictures in and out: files to RGB, drawings normalized, outlines drawn from photos.

:mod:`.imaging` (files, tensors), :mod:`.sketch` (a drawing as the model expects it),
:mod:`.outlines` and :mod:`.strokes` (outline drawings of product photos), :mod:`.pairs`
(training pairs from photos), :mod:`.palette` (label maps), :mod:`.inputs` (is this the
kind of input a model takes?).
"""
