"""DiLoCo and Streaming DiLoCo on real processes, their byte accounting and their utilisation model."""
