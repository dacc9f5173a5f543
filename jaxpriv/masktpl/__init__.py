"""Reversible mask-template protection (paper 004): keyed templates, low-bit XOR pads, key files.

``protect_image`` / ``restore_image`` work on uint8 photos; ``protect_file`` / ``restore_file``
add PNG output and sealed key files (``<output>.jpkey``)."""
