"""The paper's own TV-UNet code as a second implementation of covid_ct (implementation=original).

``code`` finds the paper's TV_UNET.py (anuprulez/COVID-CT-Segmentation at commit 12031fa,
fetched through data_manifests/tv_unet_12031fa.yaml and checked by sha256; never copied into
this repository); ``train`` runs it in a child process under tf-keras (Keras 2, TensorFlow),
``child`` is that process. The data, split, settings, seed, evaluation and record are ours.
``bisect`` (usecase-bench-bisect) trains the port, the original and controls step by step from
the same weights on one shared batch order, each in a ``steps`` child process.
"""

IMPLEMENTATIONS = ("port", "original")
"""port: our Keras 3 TV-UNet (usecases/covid_ct/model.py); original: the paper's TV_UNET.py."""

INITIAL_WEIGHTS = ("port", "own")
"""port: the weights our port draws for the run's seed (pairs the run with a port run of that
seed); own: drawn by tf-keras's initialisers from the seed (an unpaired run)."""
