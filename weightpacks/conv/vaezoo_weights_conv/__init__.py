"""Data only: vaezoo's pretrained weights in ``weights/``, located by ``vaezoo.hub.packs`` without
importing this package."""
