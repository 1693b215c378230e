"""The ``wafproxy`` command: one subcommand per job, each calling one function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from wafproxy import __version__
from wafproxy.errors import ConfigError, ConfigErrors, WafProxyError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
        return code
    except ConfigErrors as exc:
        _print_errors(exc.errors)
        return 1
    except ConfigError as exc:
        _print_errors([exc])
        return 1
    except WafProxyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `wafproxy check | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wafproxy",
        description="A reverse-proxy web application firewall with AWS WAF rule semantics.",
    )
    parser.add_argument("--version", action="version", version=f"wafproxy {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(sub)
    _add_demo(sub)
    _add_check(sub)
    _add_test(sub)
    _add_explain(sub)
    _add_import(sub)
    _add_kms(sub)
    _add_state(sub)
    _add_scan(sub)
    _add_findings(sub)
    _add_detect(sub)
    _add_managed_lists(sub)
    return parser


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the proxy",
        description="Run the proxy from a service config (-c), or with no config file in front of "
        "one upstream (--upstream) using the shipped default rules unless --rules is given.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-c", "--config", type=Path, help="service config file (YAML)")
    src.add_argument(
        "--upstream", metavar="URL", help="upstream base URL, e.g. http://127.0.0.1:9000"
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="proxy listen address with --upstream (default: %(default)s)",
    )
    p.add_argument(
        "--admin",
        default="127.0.0.1:9901",
        metavar="HOST:PORT",
        help="admin listen address (/metrics, /healthz, /readyz) with --upstream "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--rules",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="rule files with --upstream (default: the shipped default web ACL)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the listen ports (default: %(default)s)",
    )
    p.set_defaults(func=cmd_run)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run a bundled demo app behind the proxy with the shipped rules",
        description="Start the bundled demo shop (pages, search, login, JSON API) and the proxy in "
        "front of it with the shipped default rules, and print URLs to try.",
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="proxy listen address (default: %(default)s)",
    )
    p.add_argument(
        "--upstream-listen",
        default="127.0.0.1:9000",
        metavar="HOST:PORT",
        help="demo app listen address (default: %(default)s)",
    )
    p.add_argument(
        "--admin",
        default="127.0.0.1:9901",
        metavar="HOST:PORT",
        help="admin listen address (default: %(default)s)",
    )
    p.set_defaults(func=cmd_demo)
    from wafproxy.detect.attack import add_attack_parser  # argparse only; the run imports lazily

    add_attack_parser(p, os.environ.get("WAFPROXY_ADMIN_TOKEN"))
    up = sub.add_parser(
        "demo-upstream",
        help="run only the bundled demo app (no proxy)",
        description="Run the bundled demo app alone, e.g. as the upstream in deploy/compose.yaml.",
    )
    up.add_argument(
        "--listen",
        default="127.0.0.1:9000",
        metavar="HOST:PORT",
        help="listen address (default: %(default)s)",
    )
    up.set_defaults(func=cmd_demo_upstream)


def _add_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="validate a service config and/or rule files",
        description="Validate a service config and/or rule files; print every error, each rule's "
        "and each web ACL's capacity, and warnings. Exit status 1 on any error.",
    )
    p.add_argument("-c", "--config", type=Path, help="service config file (YAML)")
    p.add_argument("--rules", nargs="+", type=Path, default=[], metavar="FILE", help="rule files")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and warnings")
    p.set_defaults(func=cmd_check)


def _add_test(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "test",
        help="run YAML rule tests",
        description="Run YAML rule tests (*.tests.yaml files, or directories holding them).",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="test files or directories")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print every test, not just failures"
    )
    p.set_defaults(func=cmd_test)


def _add_explain(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "explain",
        help="show how a request is evaluated, rule by rule",
        description="Evaluate one request and print each rule, field value, transformation step, "
        "matching pattern, label and the final verdict. Give the request as a raw HTTP file "
        "(--raw) or as --method/--url/--header/--data.",
    )
    p.add_argument(
        "--rules",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="rule files (default: the shipped default web ACL)",
    )
    p.add_argument("--web-acl", metavar="NAME", help="the web ACL to use (default: the only one)")
    p.add_argument("--raw", type=Path, metavar="FILE", help="a raw HTTP request ('-' for stdin)")
    p.add_argument("--method", default="GET", help="request method (default: %(default)s)")
    p.add_argument("--url", metavar="URL", help="request target: /path?query or a full URL")
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable)",
    )
    p.add_argument("--data", metavar="BODY", help="request body ('@FILE' reads a file)")
    p.add_argument("--client-ip", default="127.0.0.1", help="client address (default: %(default)s)")
    p.set_defaults(func=cmd_explain)


def _add_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import-aws",
        help="convert AWS WAF JSON into a wafproxy rule file",
        description="Convert the JSON printed by `aws wafv2 get-web-acl`, `get-rule-group`, "
        "`get-ip-set` and `get-regex-pattern-set` into one wafproxy YAML rule file.",
    )
    p.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="the web ACL JSON first, then the sets and groups its ARNs reference",
    )
    p.add_argument("-o", "--output", type=Path, help="write the YAML here (default: stdout)")
    p.add_argument(
        "--search-string",
        choices=["auto", "base64", "text"],
        default="auto",
        help="how byte_match SearchString values are encoded: base64 as `aws wafv2 get-*` prints "
        "them, text as the console's JSON editor shows them; auto decides per document "
        "(default: %(default)s)",
    )
    p.set_defaults(func=cmd_import_aws)


def _add_kms(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wafproxy.kms.cli import add_kms_parser  # argparse only; commands import lazily

    add_kms_parser(sub)


def _add_state(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wafproxy.state.cli import add_state_parsers  # ip-sets, rate-based: admin API clients

    add_state_parsers(sub)


def _add_scan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wafproxy.scan.cli import add_scan_parser  # argparse only; commands import lazily

    add_scan_parser(sub)


def _add_findings(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wafproxy.findings.cli import add_findings_parser  # argparse only

    add_findings_parser(sub)


def _add_detect(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wafproxy.detect.cli import add_detect_parser  # admin API clients; import lazily

    add_detect_parser(sub)


def _add_managed_lists(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wafproxy.managed_lists import add_parser  # argparse only; commands import lazily

    add_parser(sub)


# -- commands ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from wafproxy.app import run
    from wafproxy.config.load import config_from_args, load_service_config

    if args.config is not None:
        config = load_service_config(args.config)
    else:
        config = config_from_args(args.upstream, args.listen, args.admin, args.rules)
    return run(config, config_path=args.config, workers=args.workers)


def cmd_demo(args: argparse.Namespace) -> int:
    from wafproxy.app import run
    from wafproxy.config.load import config_from_args
    from wafproxy.demo import build_demo_app, demo_urls
    from wafproxy.detect.demo_config import with_detection

    host, port = _host_port(args.upstream_listen)
    config = config_from_args(f"http://{host}:{port}", args.listen, args.admin)
    base = f"http://{args.listen}"
    print(f"demo app on http://{host}:{port}, behind wafproxy on {base}", flush=True)
    for description, url in demo_urls(base):
        print(f"  {description}: {url}", flush=True)
    print(f"  metrics: http://{args.admin}/metrics", flush=True)
    attack = f"wafproxy demo attack {base} --admin http://{args.admin}"
    print(f"  threat detection, every finding type in a minute: {attack}", flush=True)
    with with_detection(config) as detecting:
        apps = [(build_demo_app(), host, port)]
        return run(detecting, config_path=None, workers=1, extra_apps=apps)


def cmd_demo_upstream(args: argparse.Namespace) -> int:
    from aiohttp import web

    from wafproxy.demo import build_demo_app

    host, port = _host_port(args.listen)
    web.run_app(build_demo_app(), host=host, port=port)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from wafproxy.checker import check

    return check(args.config, args.rules, quiet=args.quiet)


def cmd_test(args: argparse.Namespace) -> int:
    from wafproxy.acl.testrunner import run_paths

    return run_paths(args.paths, verbose=args.verbose)


def cmd_explain(args: argparse.Namespace) -> int:
    from wafproxy.acl.explain import explain_command

    return explain_command(args)


def cmd_import_aws(args: argparse.Namespace) -> int:
    from wafproxy.config.aws_import import SearchStringEncoding, import_files

    encoding = SearchStringEncoding[args.search_string.upper()]
    text = import_files(args.files, search_string=encoding)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise WafProxyError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _print_errors(errors: Sequence[ConfigError]) -> None:
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{len(errors)} error{'s' if len(errors) != 1 else ''}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
