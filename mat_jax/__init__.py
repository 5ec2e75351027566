"""mat-jax: MAT inpainting in JAX/Flax."""
