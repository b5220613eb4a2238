"""`event-importer api`: serve the HTTP API with uvicorn."""

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; loopback by default.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def api_command(host: str, port: int) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from event_importer.api import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
