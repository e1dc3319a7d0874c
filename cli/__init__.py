"""promptlimits: exact, certificate-producing checks of soft-prompt tuning on given weights."""

__version__ = "0.1.0"
