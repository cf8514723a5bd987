"""Deep-MINE (Guan, Wei & Chen, Decision Support Systems 2019) as a DVC pipeline."""

__version__ = "0.1.0"
