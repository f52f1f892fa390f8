"""PaddleClas's ``PCALighting`` (AlexNet-style PCA lighting noise, used by its ResNet18_dbb recipe)."""
import numpy as np

__all__ = ["PCALighting"]

# ImageNet RGB eigenvalues and eigenvectors (columns), as PaddleClas (from the DiverseBranchBlock code) has them.
EIGVAL = np.array([0.2175, 0.0188, 0.0045], np.float32)
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]], np.float32)
ALPHA_STD = 0.1


class PCALighting:
    """Adds ``EIGVEC @ (alpha * EIGVAL)``, alpha ~ N(0, 0.1) per image, to every pixel of an RGB HWC image.

    PaddleClas takes no arguments and adds the noise to uint8 pixel values (0..255) without clipping or
    rescaling, so its effect is a shift of under a pixel level: kept as it is. The result is float32 HWC,
    for NormalizeImage next."""

    def __call__(self, img, rng):
        alpha = rng.normal(0, ALPHA_STD, size=3).astype(np.float32)
        shift = (EIGVEC * alpha.reshape(1, 3) * EIGVAL.reshape(1, 3)).sum(1)  # PaddleClas's float32 order
        return img + shift.reshape(1, 1, 3)
