"""Building a tiny family into a folder once, safely, and making its random weights respond.

``ensure_built`` is ``tiny.ensure_tiny``'s lock-and-rename recipe for any builder: several
processes may ask at once, one builds into a temp folder while the others wait on a lock file,
and the finished folder is moved into place, so nobody loads a half-written model. A marker
file records the recipe version; a folder built by an older recipe is rebuilt.

``amplify`` exists because PyTorch's default initialisation of linear and convolution layers
(uniform, gain 1/sqrt(3)) shrinks a signal's variance about threefold per layer. A freshly
initialised DiT then hands back mostly its own input (its timestep-driven gates are near zero)
and a random VAE encoder turns any picture into the same flat latents, so the prompt or a
reference image moves the output by a fraction of one grey level. Scaling the weights to about
preserve variance, as trained weights do, makes the tiny models answer to their conditioning,
which is what the tests of prompts, references and characters need to see.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MARKER = "gempix-tiny-family.json"
DENOISER_GAIN = 2.5  # measured on the tiny FLUX.2 klein: a reference then moves most pixels
VAE_GAIN = 3**0.5  # undoes the default init's 1/sqrt(3): variance kept layer to layer


def amplify(module, gain: float = DENOISER_GAIN) -> None:
    """Scale every linear and convolution weight of ``module`` by ``gain``, in place."""
    import torch

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
                layer.weight.mul_(gain)


def is_built(folder: Path, family: str, recipe: int) -> bool:
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == {"family": family, "recipe": recipe}
    except (OSError, ValueError):
        return False


def ensure_built(folder: Path, family: str, recipe: int, write: Callable[[Path], None]) -> Path:
    """``write(staging)`` the family into ``folder`` unless an up-to-date build is there."""
    folder = Path(folder)
    if is_built(folder, family, recipe):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(folder, family, recipe):  # built by whoever held the lock before us
            return folder
        staging = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=folder.parent))
        try:
            write(staging)
            (staging / MARKER).write_text(json.dumps({"family": family, "recipe": recipe}))
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder
