"""Reversible mask-template protection (paper 004): keyed templates, low-bit pads steered against
recognizers (``steer``), key files that hold the pad (restore is integer-only).

``protect_image`` / ``restore_image`` work on uint8 photos; ``protect_file`` / ``restore_file``
add PNG output and sealed key files (``<output>.jpkey``)."""
