"""espnet-hubert-ae: HuBERT pretraining schedules and layerwise analysis as an ESPnet/S3PRL recipe."""

from pathlib import Path

from setuptools import Command, find_packages, setup
from setuptools.command.build import build

# The stack below is the one combination measured to work together on Python 3.11:
# torch/torchaudio 2.9 break s3prl's hub import, newer torch cannot be resolved with espnet 202511.
install_requires = [
    "torch==2.8.0",
    "torchaudio==2.8.0",
    "espnet==202511",
    "s3prl==0.4.18",
    "sentencepiece",
    "kaldiio",
    "numpy",
    "faiss-cpu",
    "scikit-learn",
    "scipy",  # the analysis' CCA and probe (also a scikit-learn dependency)
    "threadpoolctl",  # the analysis caps BLAS threads (also a scikit-learn dependency)
    "soundfile",
    "soxr",  # resampling of the built-in corpus (espeak-ng's 22.05 kHz -> 16 kHz); librosa needs it too
    "praatio>=6",
    "pyyaml",
    "tqdm",
    "tensorboard",
    "matplotlib",
]

# A .pth file at the root of site-packages registers our s3prl upstream at interpreter start
# (espnet_hubert_ae/upstream/startup.py says why and how, at negligible cost).
STARTUP_PTH = Path(__file__).parent / "espnet_hubert_ae" / "upstream" / "espnet_hubert_ae_s3prl.pth"


class build_startup_pth(Command):
    """Put STARTUP_PTH where the installer copies it to site-packages' root.

    A normal build leaves it in build_lib, which becomes site-packages. An editable build
    ignores build_lib, so there it goes straight into the editable wheel (install_lib).
    """

    description = "install the s3prl start-up registration .pth file"
    user_options = []

    def initialize_options(self):
        self.build_lib = None
        self.editable_mode = False
        self.outputs = []

    def finalize_options(self):
        self.set_undefined_options("build", ("build_lib", "build_lib"))

    def run(self):
        target_dir = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        target = str(Path(target_dir) / STARTUP_PTH.name)
        self.mkpath(target_dir)
        self.copy_file(str(STARTUP_PTH), target)
        self.outputs = [target]

    def get_outputs(self):
        return self.outputs

    def get_output_mapping(self):
        return {}


class build_with_startup_pth(build):
    sub_commands = build.sub_commands + [("build_startup_pth", None)]


setup(
    name="espnet-hubert-ae",
    version="0.1.0",
    description=__doc__,
    packages=find_packages(include=["espnet_hubert_ae", "espnet_hubert_ae.*"]),
    # The strategy presets and the model and ASR configs (the recipe's conf/ links to them).
    package_data={"espnet_hubert_ae": ["conf/*/*.yaml", "conf/*/*.tsv"]},
    python_requires=">=3.11,<3.12",
    install_requires=install_requires,
    extras_require={"test": ["pytest", "pytest-timeout"]},
    cmdclass={"build": build_with_startup_pth, "build_startup_pth": build_startup_pth},
)
