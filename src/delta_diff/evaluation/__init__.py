"""Measure models on the path: size, compute, speed, image metric, fidelity and attention alignment."""
