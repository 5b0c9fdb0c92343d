"""The Serve application: one deployment, DLENS (HTTP API, dynamic batching, multiplexed models).

`build_app` is the import path of infra/serve/config.yaml (`serve deploy`: Serve validates the config's
`args` against the annotation, so this module keeps its annotations real: no `from __future__ import
annotations`); `dlens-serve run` calls it too.
"""

from ray.serve import Application

from dlens.serve.args import ServeArgs
from dlens.serve.service import DlensService

APP_NAME = "dlens"
#: Deployment names, as infra/serve/config.yaml must name them.
DEPLOYMENTS = ("DLENS",)


def build_app(args: ServeArgs) -> Application:
    """The DLENS deployment with these settings, its request bounds and replicas included (from `args`
    alone)."""
    options = dict(
        max_ongoing_requests=args.max_ongoing_requests, max_queued_requests=args.max_queued_requests
    )
    if args.num_replicas is not None:  # unset: Serve's default, or the Serve config's deployments entry
        options["num_replicas"] = args.num_replicas
    return DlensService.options(**options).bind(args)
