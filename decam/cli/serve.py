"""``decam serve``: put a model behind decam's HTTP protocol, for ``--model http://HOST:PORT/PATH``."""

from __future__ import annotations

import sys

import click

from decam.cli.options import debug_option
from decam.errors import ConfigError


@click.command("serve", short_help="serve a model over HTTP (for --model http://...)")
@click.argument("model")
@click.argument("overrides", nargs=-1, metavar="[key=value]...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (0.0.0.0: every interface, so anyone who reaches this machine)")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="port to listen on (0: any free port, printed at start)")
@click.option("--path", default="/predict", show_default=True, help="the endpoint's path")
@click.option("--max-batch", type=click.IntRange(1, 100000), default=256, show_default=True,
              help="most images one request may carry")
@click.option("--config", metavar="FILE", type=click.Path(), help="YAML file merged over configs/default.yaml")
@click.option("--quiet", is_flag=True, help="no line per request")
@click.option("--ssl-certfile", metavar="FILE", type=click.Path(), help="serve https with this certificate (PEM)")
@click.option("--ssl-keyfile", metavar="FILE", type=click.Path(), help="the certificate's private key (PEM)")
@debug_option
def serve(model: str, overrides: tuple[str, ...], host: str, port: int, path: str, max_batch: int,
          config: str | None, quiet: bool, ssl_certfile: str | None, ssl_keyfile: str | None) -> int:
    """Serve MODEL (any name --model takes) at http://HOST:PORT/PATH until Ctrl-C.

    POST PATH with a .npy batch of images (B, 3, H, W) in [0, 1] answers a .npy of logits (B, C);
    GET PATH describes the model (JSON). Arguments such as precision=bf16, device=cuda, batch_size=32
    or model_options.KEY=VALUE set how the model runs. See docs/remote-models.md.
    """
    from decam.config import load_config
    from decam.workflows.serve import build_service, create_app, is_loopback, listen, run_server

    if not path.startswith("/"):
        raise ConfigError(f"--path {path!r}: expected a path starting with /")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("--ssl-certfile and --ssl-keyfile go together")
    cfg = load_config(config, [*overrides, f"model={model}"])
    service = build_service(cfg, max_batch)
    sock = listen(host, port)
    scheme = "https" if ssl_certfile else "http"
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"decam serve: {cfg.model} at {scheme}://{shown}:{bound}{path} "
          f"({service.info['classes']} classes, input {service.model.input_size[0]}x{service.model.input_size[1]})",
          flush=True)
    if not is_loopback(host):
        print(f"decam: warning: listening on {host}: anyone who can reach this machine can query the model",
              file=sys.stderr, flush=True)
    try:
        run_server(create_app(service, path), sock, log_requests=not quiet, ssl_certfile=ssl_certfile,
                   ssl_keyfile=ssl_keyfile)
    except KeyboardInterrupt:
        pass
    print("decam serve: stopped", flush=True)
    return 0
