"""Trained temporal models as the pipeline sees them: the model card, the checkpoint repository, and the per-video
inputs each model reads."""
