"""The ``chexpert`` and ``chexpert-5x200`` dataset plugins (CheXpert v1.0, full size or small).

``chexpert`` (``plugin.py``) is the label-only training set; ``chexpert-5x200`` (``five_by_200.py``)
is GLoRIA's zero-shot test set drawn from train.csv. ``chexpert --exclude-5x200 DIR`` removes the
images a prepared 5x200 set uses from the training manifest.
"""
