"""Data files shipped with roisynth (MUSE dictionary, simulator parameters)."""
