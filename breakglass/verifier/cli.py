"""`breakglass` console script: verify tokens and trust bundles offline.

    breakglass verify --bundle BUNDLE --roots ROOTS --audience SERVICE [--scope SCOPE]
                      [--state DIR] [--max-uses N] [--leeway SECONDS] [--json] TOKEN|-
    breakglass bundle verify --roots ROOTS [--state DIR] [--json] BUNDLE

Exit codes: 0 accepted, 1 rejected (with the reason), 2 usage error, unreadable file,
broken roots file or unusable state directory. It never prints a traceback: whatever
the input, the answer is one of those three outcomes. Imports stay minimal because this
runs on every SSH login or proxied request (see bench/cli_cold_start.py).
"""

from __future__ import annotations

import sys

EXIT_ACCEPT, EXIT_REJECT, EXIT_ERROR = 0, 1, 2
MAX_TOKEN_INPUT = 16 * 1024
MAX_FILE_BYTES = 8 * 1024 * 1024


class UsageError(Exception):
    """Bad arguments or an unreadable file: exit 2."""

    def __init__(self, message: str, code: str = "usage"):
        super().__init__(message)
        self.code = code


def _parser():
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # argparse would print and sys.exit(2) itself
            raise UsageError(f"{self.prog}: {message}")

    def integer(minimum: int):
        def parse(text: str) -> int:
            try:
                value = int(text, 10)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!a} is not an integer") from None
            if value < minimum:
                raise argparse.ArgumentTypeError(f"must be at least {minimum}")
            return value

        return parse

    parser = Parser(prog="breakglass", description="Verify Breakglass tokens offline.")
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser("verify", help="verify an access token for a service")
    verify.add_argument("--bundle", required=True, help="trust bundle JSON file (- for stdin)")
    verify.add_argument("--roots", required=True, help="pinned roots JSON file")
    verify.add_argument("--audience", required=True, help="this service's slug (token aud)")
    verify.add_argument("--scope", help="required scope(s), space separated")
    verify.add_argument("--state", help="state directory: anti-rollback and single use")
    verify.add_argument("--max-uses", type=integer(1), help="uses per jti with --state (1)")
    verify.add_argument("--max-lifetime", type=integer(1), help="stricter lifetime cap (s)")
    verify.add_argument("--leeway", type=integer(0), default=60, help="clock skew (s)")
    verify.add_argument("--now", type=integer(0), help=argparse.SUPPRESS)  # tests, vectors
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument("token", help="the token, or - to read it from stdin")

    bundle = commands.add_parser("bundle", help="trust bundle commands")
    bundle_commands = bundle.add_subparsers(dest="bundle_command", required=True)
    bundle_verify = bundle_commands.add_parser(
        "verify", help="check a bundle's signatures and freshness"
    )
    bundle_verify.add_argument("--roots", required=True, help="pinned roots JSON file")
    bundle_verify.add_argument("--state", help="state directory: anti-rollback")
    bundle_verify.add_argument("--leeway", type=integer(0), default=60, help="clock skew (s)")
    bundle_verify.add_argument("--now", type=integer(0), help=argparse.SUPPRESS)
    bundle_verify.add_argument("--json", action="store_true", help="print one JSON object")
    bundle_verify.add_argument("bundle", help="trust bundle JSON file (- for stdin)")
    return parser


def _read(path: str, *, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path!a}: {exc.strerror}", "unreadable") from None
    except ValueError:  # e.g. a directory name that open() accepted on some platforms
        raise UsageError(f"cannot read {what} {path!a}", "unreadable") from None
    if len(data) > limit:
        raise UsageError(f"{what} {path!a} is larger than {limit} bytes", "unreadable")
    return data


def _emit(stream, text: str) -> None:
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # closed pipe: the exit code still carries the decision


def _dumps(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=True, sort_keys=True)


def _verify_token(args) -> tuple[int, dict, str]:
    from breakglass.verifier import MalformedRoots, StateError, verify_bundle, verify_token

    if args.max_uses is not None and not args.state:
        raise UsageError("--max-uses needs --state (a directory to count uses in)")
    if args.token == "-":
        raw = _read("-", what="token", limit=MAX_TOKEN_INPUT)
        token = raw.decode("ascii", "replace").strip()
    else:
        token = args.token.strip()
    roots = _read(args.roots, what="roots file", limit=256 * 1024)
    bundle_raw = _read(args.bundle, what="bundle", limit=MAX_FILE_BYTES)
    try:
        bundle = verify_bundle(
            bundle_raw, roots, now=args.now, state_dir=args.state, leeway=args.leeway
        )
    except (MalformedRoots, StateError) as exc:
        raise UsageError(str(exc), exc.code) from None
    try:
        claims = verify_token(
            token,
            bundle,
            audience=args.audience,
            scope=args.scope,
            now=args.now,
            leeway=args.leeway,
            state_dir=args.state,
            max_uses=args.max_uses,
            max_lifetime=args.max_lifetime,
        )
    except StateError as exc:
        raise UsageError(str(exc), exc.code) from None
    result = {
        "decision": "accept",
        "audience": args.audience,
        "bundle_version": bundle.version,
        "claims": claims,
    }
    lines = [f"ACCEPT token for {args.audience} (bundle version {bundle.version})"]
    lines += [f"  {name}: {_dumps(value)}" for name, value in sorted(claims.items())]
    return EXIT_ACCEPT, result, "\n".join(lines)


def _verify_bundle(args) -> tuple[int, dict, str]:
    from breakglass.verifier import MalformedRoots, StateError, verify_bundle

    roots = _read(args.roots, what="roots file", limit=256 * 1024)
    bundle_raw = _read(args.bundle, what="bundle", limit=MAX_FILE_BYTES)
    try:
        bundle = verify_bundle(
            bundle_raw, roots, now=args.now, state_dir=args.state, leeway=args.leeway
        )
    except (MalformedRoots, StateError) as exc:
        raise UsageError(str(exc), exc.code) from None
    result = {
        "decision": "accept",
        "version": bundle.version,
        "issuer": bundle.issuer,
        "issued_at": bundle.issued_at,
        "expires_at": bundle.expires_at,
        "signed_by": bundle.signed_by,
        "keys": sorted(bundle.keys),
        "revoked_jti": len(bundle.revoked_jti),
        "revoked_kids": sorted(bundle.revoked_kids),
    }
    text = (
        f"ACCEPT bundle version {bundle.version} from {bundle.issuer}, "
        f"signed by {len(bundle.signed_by)} root key(s), expires at {bundle.expires_at}, "
        f"{len(bundle.keys)} issuer key(s), {len(bundle.revoked_jti)} revoked token(s)"
    )
    return EXIT_ACCEPT, result, text


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to sys.exit)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    try:
        try:
            args = _parser().parse_args(argv)
            as_json = args.json
            if args.command == "verify":
                code, result, text = _verify_token(args)
            else:
                code, result, text = _verify_bundle(args)
        except UsageError as exc:
            code, result = EXIT_ERROR, {"decision": "error", "error": exc.code}
            result["message"] = text = str(exc)
            if not text.startswith("breakglass"):
                text = f"breakglass: {text}"
        except SystemExit as exc:  # --help / --version
            return exc.code if isinstance(exc.code, int) else EXIT_ERROR
        except RecursionError:
            code, text = EXIT_REJECT, "input nested too deeply"
            result = {"decision": "reject", "error": "malformed", "message": text}
        except Exception as exc:
            from breakglass.verifier.errors import VerificationError

            if not isinstance(exc, VerificationError):
                raise
            code = EXIT_REJECT
            result = {"decision": "reject", "error": exc.code, "message": str(exc)}
            text = f"REJECT {exc.code}: {exc}"
        if as_json:
            _emit(sys.stdout, _dumps(result))
        else:
            _emit(sys.stdout if code == EXIT_ACCEPT else sys.stderr, text)
        return code
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - the promise is: never a traceback
        message = f"internal error ({type(exc).__name__}); input refused"
        if as_json:
            _emit(
                sys.stdout, _dumps({"decision": "error", "error": "internal", "message": message})
            )
        else:
            _emit(sys.stderr, f"breakglass: {message}")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
