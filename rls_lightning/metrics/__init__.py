"""Image-quality and fidelity metrics of the paper's evaluation (section 4)."""
