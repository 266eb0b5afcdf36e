"""Figures: each module here draws one topic from numbers the library computes."""
