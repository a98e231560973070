"""`datacurate scrape`: flags onto scrape(), then the summary."""

from __future__ import annotations

import click

from datacurate.core.terminal import echo_result
from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.ray import ray_flag, ray_options
from datacurate.scrape.options import DEFAULTS, ENGINES


def _d(key: str) -> str:
    value = DEFAULTS[key]
    return f" (default {value})" if value not in (None, "", (), {}) else ""


@click.command()
@click.option("--engine", "-e", metavar="NAMES", help=f"Engines, comma-separated: {', '.join(ENGINES)}{_d('engine')}. "
              "wikimedia, openverse and flickr say each image's licence and author. google is not offered: "
              "Google image search needs JavaScript and does not work from a command-line client.")
@click.option("--fallback", is_flag=True, default=None, help="Use the engines in turn: the next one only when the "
              "ones before it refuse (blocked, bad key, changed format), e.g. -e baidu,bing --fallback.")
@click.option("--license", metavar="NAMES", help="Keep only images under these licences, comma-separated: cc0, pdm, "
              "by, by-sa, by-nd, by-nc, by-nc-sa, by-nc-nd, or the shorthands commercial, modification "
              "(engines wikimedia, openverse, flickr).")
@click.option("--suffix", "-s", metavar="TEXT", help="Words added to every query through {suffix}, e.g. \"shirt doll\".")
@click.option("--template", metavar="TEXT", help="Query template with {class} and {suffix} (default \"{class} {suffix}\").")
@click.option("--queries", metavar="FILE", help="YAML of per-class overrides: several queries, other text, or skip.")
@click.option("--class", "classes", multiple=True, metavar="NAME", help="Only this class (repeatable).")
@click.option("--max-per-class", "-n", type=int, help=f"Scraped images wanted per class{_d('max_per_class')}; a re-run fetches the difference.")
@click.option("--max-pages", type=int, help=f"Result pages per query and engine{_d('max_pages')}.")
@click.option("--base-url", multiple=True, metavar="ENGINE=URL", help="Another base URL for an engine (mirror, proxy, test server); repeatable.")
@click.option("--urls", metavar="FILE", help="For --engine urls: YAML {class: [url, ...]} or a folder of <class>.txt.")
@click.option("--flickr-key", metavar="KEY", help="Flickr API key, 32 hex digits (default: $FLICKR_APIKEY); new keys need a Pro account.")
@click.option("--openverse-token", metavar="TOKEN", help="Openverse OAuth token, optional (default: $OPENVERSE_TOKEN); anonymous use is limited to 20 requests a minute.")
@click.option("--contact", metavar="EMAIL_OR_URL", help="Contact added to the User-Agent (required by wikimedia's User-Agent policy).")
@click.option("--concurrency", "-j", type=int, help=f"Requests at once, all hosts{_d('concurrency')}.")
@click.option("--per-host", type=int, help=f"Requests at once to one host{_d('per_host')}.")
@click.option("--delay", type=float, help=f"Minimum seconds between requests to one host{_d('delay')}.")
@click.option("--timeout", type=float, help=f"Seconds per request: connect, each read, the whole body{_d('timeout')}.")
@click.option("--retries", type=int, help=f"Retries after 429/503 (honouring Retry-After) or a connection error{_d('retries')}.")
@click.option("--max-wait", type=float, help=f"Longest Retry-After to honour, seconds{_d('max_wait')}.")
@click.option("--max-bytes", metavar="SIZE", help=f"Byte limit per image, e.g. 20MB{_d('max_bytes')}.")
@click.option("--max-redirects", type=int, help=f"Redirects followed per request{_d('max_redirects')}.")
@click.option("--min-size", type=int, help=f"Smallest side in pixels{_d('min_size')}.")
@click.option("--max-pixels", type=int, help=f"Most pixels per image{_d('max_pixels')}.")
@click.option("--max-aspect", type=float, help=f"Longest side over shortest side{_d('max_aspect')}.")
@click.option("--ignore-robots", is_flag=True, default=None, help="Do not read robots.txt (X-Robots-Tag is still honoured).")
@click.option("--allow-private", is_flag=True, default=None, help="Allow private and loopback addresses (intranet mirrors, tests); link-local and cloud metadata addresses stay refused.")
@click.option("--allow-host", multiple=True, metavar="HOST", help="Allow this host name or address even when it is private or link-local (repeatable).")
@click.option("--user-agent", metavar="TEXT", help="User-Agent header (default names datacurate).")
@click.option("--dry-run", is_flag=True, help="Print the queries and result-page URLs; fetch nothing.")
@json_option
@ray_options
@pass_ctx
def scrape(ctx, dry_run, as_json, ray, no_ray, **flags) -> None:
    """More images per class from image search, by query template, into data/scraped/<class>/.

    Engines: bing (default), baidu, wikimedia and openverse (both say each image's licence and author,
    no key), flickr (an API key; new keys need a Pro account), greedy (one site), urls (a list). Google
    image search is not offered: it needs JavaScript and does not work from a command-line client.
    An engine that refuses (blocked, bad key) is named with its own words; exit 3 when no class got an
    image because an engine blocked this client, 4 for a rejected key, 5 for a page format that changed.
    """
    from datacurate import api

    flags["base_url"] = list(flags["base_url"]) or None
    flags["allow_host"] = list(flags["allow_host"]) or None
    warn = lambda msg: click.echo(f"datacurate: warning: {msg}", err=True)  # noqa: E731
    run = api.scrape(ctx.workspace(), dry_run=dry_run, quiet=ctx.quiet or as_json, warn=warn, ray=ray_flag(ray, no_ray), **flags)
    echo_result(run, as_json)
    failure = run.failure()
    if failure:
        error = click.ClickException(failure[0])
        error.exit_code = failure[1]
        raise error


COMMANDS = [scrape]
