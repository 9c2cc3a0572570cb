"""The framework-free core: the hand-derived reference, network spec, datasets, cases,
comparison maths, deviation registry, gradcheck and errors. Imports NumPy and the standard
library only."""
