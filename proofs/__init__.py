"""The decisions: exact arithmetic, exact and SMT encodings, certificates, the re-checker.

Nothing in this package imports torch.
"""
