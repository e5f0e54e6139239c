"""``vaezoo explore``: a model's latent space in the browser, served locally with nothing fetched
from elsewhere (:mod:`.server`), over a model-side session that any client can call (:mod:`.session`)."""

from .server import ExplorerServer, serve
from .session import Explorer

__all__ = ["Explorer", "ExplorerServer", "serve"]
