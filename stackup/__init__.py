"""stackup: declarative environments from Compose-compatible stack files.

Import nothing heavy here: `stackup --version` must start in well under 150 ms.
"""

__version__ = "0.1.0"
