"""deeplab_ref: a teaching reference implementation of DeepLab-v2.

Chen, Papandreou, Kokkinos, Murphy and Yuille, "DeepLab: Semantic Image Segmentation with Deep
Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018 (arXiv 1606.00915).

One concept per module: ``atrous`` (Sec. 3.1), ``receptive_field``, ``models`` (Sec. 3.2, 4),
``crf`` (Sec. 3.3), ``data``, ``train``, ``evaluate`` and ``viz``. Import what you need, e.g.
``from deeplab_ref.atrous import atrous_conv2d``; this file imports nothing heavy on purpose.
"""

__version__ = "0.1.0"
