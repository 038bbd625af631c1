"""espnet-hubert-ae: HuBERT pretraining schedules and layerwise analysis as an ESPnet/S3PRL recipe."""

from setuptools import find_packages, setup

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
    "soundfile",
    "praatio>=6",
    "pyyaml",
    "tqdm",
    "tensorboard",
    "matplotlib",
]

setup(
    name="espnet-hubert-ae",
    version="0.1.0",
    description=__doc__,
    packages=find_packages(include=["espnet_hubert_ae", "espnet_hubert_ae.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=install_requires,
    extras_require={"test": ["pytest", "pytest-timeout"]},
)
