"""Media and model adapters: the video source over decord, action backbones, object detectors, weights, devices,
and the synthetic archive generator."""
