"""pix2pix: image-to-image translation with conditional GANs (Isola et al. 2017).

The pieces, in the order data flows through them: :mod:`.data` (paired folders),
:mod:`.models` (U-Net generator, PatchGAN discriminator), :mod:`.train` (trainer),
:mod:`.io` (safetensors models, checkpoints), :mod:`.infer` (cached inference),
:mod:`.sketch` and :mod:`.outlines` (drawings in, outlines from photos), :mod:`.cli`.
"""

__version__ = "0.1.0"
