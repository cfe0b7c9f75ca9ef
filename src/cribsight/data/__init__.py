"""Data: dataset adapters, camera-condition simulation, synthetic occlusion (see the data engine)."""
