"""Evaluation of strategy specs: engines, fill model, metrics, walk-forward windows, overfitting statistics, gates."""
