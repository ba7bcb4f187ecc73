"""carpose training pipeline: Detectron2 configs, backbones, data registration, training and evaluation."""
