"""`breakglass` console script: verify tokens and trust bundles offline.

    breakglass verify --bundle BUNDLE --roots ROOTS --audience SERVICE [--scope SCOPE]
                      [--state DIR] [--max-uses N] [--leeway SECONDS] [--json] TOKEN|-
    breakglass bundle verify --roots ROOTS [--state DIR] [--json] BUNDLE
    breakglass sync --url BASE --roots ROOTS --dir DIR [--ssh-path SLUG ...] [--json]
    breakglass kit create|mint|check|rebuild ...   (the sealed offline kit, kit_cli.py)

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


USAGE = """\
usage: breakglass verify --bundle BUNDLE --roots ROOTS --audience SERVICE [--scope SCOPE]
                         [--subject NAME] [--state DIR] [--max-uses N]
                         [--max-lifetime SECONDS] [--leeway SECONDS] [--allow-drill]
                         [--json] TOKEN
       breakglass bundle verify --roots ROOTS [--state DIR] [--leeway SECONDS] [--json] BUNDLE
       breakglass serve --bundle BUNDLE --roots ROOTS --audience SERVICE [--scope SCOPE]
                        [--state DIR] [--max-uses N] [--allow-drill] [--listen HOST:PORT]
       breakglass sync --url BASE --roots ROOTS --dir DIR [--ssh-path SLUG ...]
                       [--timeout SECONDS] [--json]
       breakglass kit create|mint|check|rebuild ...  (breakglass kit --help)

Verify a Breakglass token (or a trust bundle) offline, with no call to the server.

  --bundle BUNDLE        signed trust bundle JSON (from /trust/bundle.json); - for stdin
  --roots ROOTS          pinned roots JSON (export_roots), obtained out of band
  --audience SERVICE     this service's slug: the token's aud must equal it
  --scope SCOPE          required scope(s), space separated; all must be granted
  --state DIR            remember the newest bundle version (anti-rollback) and count
                         uses of each token (single use by default)
  --max-uses N           with --state, accept each token up to N times (default 1)
  --max-lifetime SECONDS refuse tokens living longer (stricter than the bundle's cap)
  --subject NAME         require the token's sub to be NAME (e.g. the account logging in)
  --leeway SECONDS       tolerated clock skew for nbf/iat/exp (default 60)
  --allow-drill          accept drill credentials (drill: true); only for drill probe
                         endpoints: drill tokens are minted without approval
  --json                 print one JSON object, whatever the outcome
  TOKEN                  the token, or - to read it from stdin (at a terminal: paste
                         it and press Enter)
  --listen HOST:PORT     serve: nginx auth_request sidecar address (127.0.0.1:8081)
  --url BASE             sync: the Breakglass server (fetches BASE/trust/bundle.json)
  --dir DIR              sync: install bundle.json (and ssh/SLUG/ca.pub, revoked.krl) here
  --ssh-path SLUG        sync: also install this SSH path's CA and KRL (repeatable)
  --timeout SECONDS      sync: give up on the server after this long (default 20)

exit status: 0 accepted, 1 rejected (reason printed), 2 usage error, unreadable file,
broken roots file or unusable state directory. sync: 0 installed or already up to date,
1 bundle refused (bad signature, expired, older than the installed one), 2 server
unreachable, HTTP error or folder not writable; nothing is installed unless it exits 0.

A kit token (from `breakglass kit mint`) is accepted within its kit's policy even when
the bundle has expired; every other token then is refused (docs/operations.md)."""


class _Help(Exception):
    pass


def _integer(minimum: int):
    def parse(name: str, text: str) -> int:
        if not (text.isascii() and text.isdigit()) or len(text) > 15:
            raise UsageError(f"{name} needs a whole number, not {text!a}")
        value = int(text)
        if value < minimum:
            raise UsageError(f"{name} must be at least {minimum}")
        return value

    return parse


def _text(name: str, value: str) -> str:
    return value


def _listen(name: str, value: str) -> str:
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{name} needs HOST:PORT, not {value!a}")
    return value


_COMMON = {"--state": _text, "--leeway": _integer(0), "--now": _integer(0)}
# Options without a value, per command (`--json` is accepted by every command).
FLAGS = {
    "verify": ("--allow-drill",),
    "serve": ("--allow-drill",),
    "bundle verify": (),
    "sync": (),
}
COMMANDS = {
    # command: (options with a value, required options, name of the positional argument)
    "verify": (
        {
            **_COMMON,
            "--bundle": _text,
            "--roots": _text,
            "--audience": _text,
            "--scope": _text,
            "--max-uses": _integer(1),
            "--max-lifetime": _integer(1),
            "--subject": _text,
        },
        ("--bundle", "--roots", "--audience"),
        "token",
    ),
    "bundle verify": ({**_COMMON, "--roots": _text}, ("--roots",), "bundle"),
    "serve": (
        {
            "--state": _text,
            "--leeway": _integer(0),
            "--bundle": _text,
            "--roots": _text,
            "--audience": _text,
            "--scope": _text,
            "--max-uses": _integer(1),
            "--listen": _listen,
        },
        ("--bundle", "--roots", "--audience"),
        None,
    ),
    "sync": (
        {
            "--url": _text,
            "--roots": _text,
            "--dir": _text,
            "--ssh-path": _text,
            "--timeout": _integer(1),
            "--now": _integer(0),
        },
        ("--url", "--roots", "--dir"),
        None,
    ),
}
# Options that may be given more than once; they collect into a list.
_REPEATABLE = {"--ssh-path"}


class Arguments:
    """Parsed command line: option names become attributes (`--max-uses` -> max_uses)."""

    def __init__(self, command: str, values: dict):
        self.command = command
        self.json = False
        self.allow_drill = False
        self.leeway = 60
        self.now = self.state = self.scope = self.max_uses = self.max_lifetime = None
        self.listen = "127.0.0.1:8081"
        self.subject = None
        self.timeout = None
        self.ssh_path: list[str] = []
        for name, value in values.items():
            setattr(self, name.lstrip("-").replace("-", "_"), value)


def parse_arguments(argv: list[str]) -> Arguments:
    """A small hand-written parser: argparse (with gettext and shutil) would cost ~5 ms
    of start-up on every SSH login; bench/cli_cold_start.py keeps us honest."""
    if not argv or argv[0] in ("-h", "--help"):
        raise _Help
    command, rest = argv[0], argv[1:]
    if command == "kit":
        return Arguments("kit", {"argv": rest})
    if command == "bundle":
        if rest[:1] in (["-h"], ["--help"]):
            raise _Help
        if rest[:1] != ["verify"]:
            raise UsageError("the bundle command is: breakglass bundle verify --roots ROOTS BUNDLE")
        command, rest = "bundle verify", rest[1:]
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!a} (verify, bundle verify, serve, sync or kit)")
    options, required, positional_name = COMMANDS[command]
    values: dict = {}
    repeated: list[tuple[str, str]] = []
    positional: list[str] = []
    index = 0
    while index < len(rest):
        argument = rest[index]
        index += 1
        if argument == "--":
            positional.extend(rest[index:])
            break
        if argument in ("-h", "--help"):
            raise _Help
        if not argument.startswith("-") or argument == "-":
            positional.append(argument)
            continue
        name, equals, value = argument.partition("=")
        if name in values or (name == "--json" and "json" in values):
            raise UsageError(f"{name} given twice")
        if name == "--json" and not equals:
            values["json"] = True
            continue
        if name in FLAGS[command]:
            if equals:
                raise UsageError(f"{name} takes no value")
            values[name] = True
            continue
        if name not in options:
            raise UsageError(f"unknown option {name!a} for {command}")
        if not equals:
            if index >= len(rest):
                raise UsageError(f"{name} needs a value")
            value = rest[index]
            index += 1
        if name in _REPEATABLE:
            values.pop(name, None)
            repeated.append((name, options[name](name, value)))
            continue
        values[name] = options[name](name, value)
    for name in _REPEATABLE & set(options):
        values[name] = [value for given, value in repeated if given == name]
    missing = [name for name in required if name not in values]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}")
    if positional_name is None:
        if positional:
            raise UsageError(f"unexpected argument {positional[0]!a}")
    elif len(positional) != 1:
        raise UsageError(f"expected exactly one {positional_name.upper()} argument")
    else:
        values[positional_name] = positional[0]
    return Arguments(command, values)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed or detached standard input
        return False


def _read(path: str, *, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        if path == "-" and _stdin_is_terminal():
            # A person at a terminal, not a pipe: say what we wait for instead of
            # waiting silently (only then: pam_exec and scripts read stderr too).
            _emit(sys.stderr, f"Paste the {what}, then press Enter and Ctrl-D:")
            data = sys.stdin.buffer.read(limit + 1)
        elif path == "-":
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
    from breakglass.core import MalformedRoots, StateError, verify_bundle, verify_token

    if args.max_uses is not None and not args.state:
        raise UsageError("--max-uses needs --state (a directory to count uses in)")
    if [args.token, args.bundle, args.roots].count("-") > 1:
        raise UsageError("only one of TOKEN, --bundle and --roots can be - (stdin)")
    if args.token == "-" and _stdin_is_terminal():
        # A token is one line: Enter ends it, no Ctrl-D needed.
        _emit(sys.stderr, "Paste the token and press Enter (Ctrl-C to give up):")
        line = sys.stdin.buffer.readline(MAX_TOKEN_INPUT + 1)
        if len(line) > MAX_TOKEN_INPUT:
            raise UsageError(f"token '-' is larger than {MAX_TOKEN_INPUT} bytes", "unreadable")
        token = line.decode("ascii", "replace").strip()
    elif args.token == "-":
        raw = _read("-", what="token", limit=MAX_TOKEN_INPUT)
        # pam_exec's expose_authtok ends the password with a NUL byte.
        token = raw.decode("ascii", "replace").strip("\x00 \t\r\n")
    else:
        token = args.token.strip()
    roots = _read(args.roots, what="roots file", limit=256 * 1024)
    bundle_raw = _read(args.bundle, what="bundle", limit=MAX_FILE_BYTES)
    try:
        bundle = verify_bundle(
            bundle_raw,
            roots,
            now=args.now,
            state_dir=args.state,
            leeway=args.leeway,
            allow_expired=True,
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
            subject=args.subject,
            allow_drill=args.allow_drill,
        )
    except StateError as exc:
        raise UsageError(str(exc), exc.code) from None
    result = {
        "decision": "accept",
        "audience": args.audience,
        "bundle_version": bundle.version,
        "claims": claims,
    }
    kit = claims.get("kit")
    if kit is not None:
        result["kit"] = kit
    lines = [
        f"ACCEPT{f' (kit {kit})' if kit is not None else ''} token for {args.audience} "
        f"(bundle version {bundle.version})"
    ]
    lines += [f"  {name}: {_dumps(value)}" for name, value in sorted(claims.items())]
    return EXIT_ACCEPT, result, "\n".join(lines)


def _verify_bundle(args) -> tuple[int, dict, str]:
    from breakglass.core import MalformedRoots, StateError, verify_bundle

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
        "audit_head": (
            {"seq": bundle.audit_head[0], "hash": bundle.audit_head[1]}
            if bundle.audit_head
            else None
        ),
    }
    text = (
        f"ACCEPT bundle version {bundle.version} from {bundle.issuer}, "
        f"signed by {len(bundle.signed_by)} root key(s), expires at {bundle.expires_at}, "
        f"{len(bundle.keys)} issuer key(s), {len(bundle.revoked_jti)} revoked token(s)"
    )
    if bundle.audit_head:
        # Worth writing down: `verify_audit --checkpoint SEQ:HASH` on the server.
        text += f"\naudit head at signing: {bundle.audit_head[0]}:{bundle.audit_head[1]}"
    return EXIT_ACCEPT, result, text


def _sync(args) -> tuple[int, dict, str]:
    from breakglass.core import MalformedRoots
    from breakglass.core.sync import DEFAULT_TIMEOUT, SyncError, sync

    roots = _read(args.roots, what="roots file", limit=256 * 1024)
    try:
        result = sync(
            url=args.url,
            roots=roots,
            directory=args.dir,
            ssh_paths=args.ssh_path,
            timeout=args.timeout or DEFAULT_TIMEOUT,
            now=args.now,
        )
    except MalformedRoots as exc:
        raise UsageError(str(exc), exc.code) from None
    except SyncError as exc:
        if not exc.rejected:
            raise UsageError(str(exc), exc.code) from None
        result = {"decision": "reject", "error": exc.code, "message": str(exc)}
        return EXIT_REJECT, result, f"REJECT {exc.code}: {exc}"
    paths = ", ".join(result["ssh_paths"]) or "none"
    if result["decision"] == "installed":
        text = (
            f"installed bundle version {result['version']} in {result['directory']} "
            f"(was {result['previous_version'] or 'none'}); SSH paths: {paths}"
        )
    else:
        text = f"bundle version {result['version']} is already installed; SSH paths: {paths}"
    return EXIT_ACCEPT, result, text


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to sys.exit).

    Run as a program (no `argv` given) a one-shot decision ends with `os._exit` once the
    output is flushed: tearing down the interpreter's modules would cost a few more
    milliseconds on every SSH login or request, and there is nothing left to clean up.
    """
    if argv is None:
        code = _run(sys.argv[1:])
        if code in (EXIT_ACCEPT, EXIT_REJECT, EXIT_ERROR):
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            import os

            os._exit(code)
        return code
    return _run(list(argv))


def _run(argv: list[str]) -> int:
    as_json = "--json" in argv
    try:
        try:
            args = parse_arguments(argv)
            as_json = args.json
            if args.command == "serve":
                from breakglass.core.sidecar import serve

                return serve(args)
            if args.command == "kit":
                # Only kit commands load SLIP-39 and the signing code (kit_cli.py).
                from breakglass.core.kit_cli import main as kit_main

                return kit_main(args.argv)
            if args.command == "sync":
                code, result, text = _sync(args)
            elif args.command == "verify":
                code, result, text = _verify_token(args)
            else:
                code, result, text = _verify_bundle(args)
        except UsageError as exc:
            code, result = EXIT_ERROR, {"decision": "error", "error": exc.code}
            result["message"] = text = str(exc)
            text = f"breakglass: {text}"
            if exc.code == "usage":
                text += "\n(breakglass --help shows the usage)"
        except _Help:
            _emit(sys.stdout, USAGE)
            return EXIT_ACCEPT
        except RecursionError:
            code, text = EXIT_REJECT, "input nested too deeply"
            result = {"decision": "reject", "error": "malformed", "message": text}
        except Exception as exc:
            from breakglass.core.errors import VerificationError

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
