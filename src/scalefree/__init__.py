"""scalefree: Adam with weight decay done right (AdamL2, AdamW, proximal variants), scale-freeness,
and the CIFAR experiments of Zhuang, Liu, Cutkosky, Orabona (TMLR 2022)."""

__version__ = "0.1.0"
