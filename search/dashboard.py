"""optuna-dashboard on a study storage, served by a threaded WSGI server from the standard library.

``optuna_dashboard.run_server`` uses wsgiref's single-threaded server, where one slow request (a large
study's trials) holds up every other browser request; the same WSGI app on a threading server does not.
"""

from __future__ import annotations

from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard
from optuna.storages import BaseStorage

__all__ = ["dashboard_server"]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser holding a connection open must not keep the process alive
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Requests are not logged: the dashboard polls every few seconds and would flood the terminal."""


def dashboard_server(storage: BaseStorage, host: str = "127.0.0.1", port: int = 8080,
                     studies_root: str | Path | None = None) -> WSGIServer:
    """A server for the dashboard of ``storage`` bound to ``host:port`` (port 0: any free port).

    Call ``serve_forever()`` on it; ``server.server_port`` is the bound port. The studies' artifacts (the
    HTML reports ``search report`` attaches) are served from their study folders, so the dashboard's
    artifact links open them.
    """
    from search.paths import studies_root as default_studies_root
    from search.report import StudiesArtifactStore

    root = Path(studies_root) if studies_root is not None else default_studies_root()
    app = optuna_dashboard.wsgi(storage, artifact_store=StudiesArtifactStore(root))
    return make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
