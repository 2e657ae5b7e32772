"""Plain Python per-video work, by role: `store` (where data lives), `media` (decoding, backbones, detectors),
`models` (model cards, checkpoints, inputs) and `jobs` (extract, plan, score, report, train, evaluate)."""
