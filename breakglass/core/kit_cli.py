"""`breakglass kit ...`: create, use and drill the sealed offline kit, with no server.

    breakglass kit create --kit ID --issuer URL --custodian NAME ... --threshold K
                          --audience SVC ... --scope S ... [--max-minutes 60]
                          [--valid-days 730] [--ssh-policy FILE] --out kit.json
                          --shares-dir DIR
    breakglass kit mint --kit-file kit.json --audience SVC --scope S --minutes N
                        --subject WHO --reason TEXT --journal FILE [--roots ROOTS]
    breakglass kit mint --kit-file kit.json --ssh-path SLUG --ssh-public-key FILE
                        [--principal P ...] [--out CERT] --minutes N
                        --subject WHO --reason TEXT --journal FILE [--roots ROOTS]
    breakglass kit check --kit-file kit.json [--roots ROOTS]
    breakglass kit rebuild --kit-file kit.json [--roots ROOTS] [--json] [--challenge C]

Shares are typed without echo when standard input is a terminal, or read one per line
otherwise (scripts, tests). Exit status: 0 done, 1 refused (a share, the kit or the
policy; the reason printed), 2 usage error or unreadable file. See docs/operations.md.
"""

from __future__ import annotations

import json
import os
import sys
import time

from breakglass.core.errors import VerificationError
from breakglass.core.kit import (
    KitError,
    kit_key_rebuild,
    kit_load,
    share_check,
)

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
CHECK_CODE_PREFIX = "bgkc1"


class _Usage(Exception):
    pass


def _parser():
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # one line, exit 2, no usage dump
            raise _Usage(message)

    parser = Parser(prog="breakglass kit", description="The sealed offline kit.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    create = sub.add_parser("create", help="make a kit key and its custodian shares")
    create.add_argument("--kit", required=True, help="kit id, e.g. kit-2026")
    create.add_argument("--issuer", required=True, help="BREAKGLASS_ISSUER of the server")
    create.add_argument("--custodian", action="append", required=True, help="repeat, in order")
    create.add_argument("--threshold", type=int, required=True)
    create.add_argument("--audience", action="append", required=True, help="repeatable")
    create.add_argument("--scope", action="append", required=True, help="repeatable")
    create.add_argument("--max-minutes", type=int, default=60)
    create.add_argument("--valid-days", type=int, default=730)
    create.add_argument(
        "--ssh-policy", help="SSH paths to cover: the file manage.py export_ssh_policy writes"
    )
    create.add_argument("--out", required=True, help="public part to certify and register")
    create.add_argument("--shares-dir", required=True, help="new directory: one page each")

    mint = sub.add_parser(
        "mint", help="rebuild the key from k shares and mint a token or an SSH certificate"
    )
    _kit_options(mint)
    mint.add_argument("--audience", help="a token: the service it is for")
    mint.add_argument("--scope", action="append", help="a token: repeatable")
    mint.add_argument("--ssh-path", help="an SSH certificate: the SSH path it is for")
    mint.add_argument("--ssh-public-key", help="an SSH certificate: the responder's .pub file")
    mint.add_argument(
        "--principal", action="append", help="an SSH certificate: repeatable (default: all)"
    )
    mint.add_argument("--out", help="an SSH certificate: where (default: KEY-cert.pub)")
    mint.add_argument("--minutes", type=int, required=True)
    mint.add_argument("--subject", required=True, help="the account that will log in")
    mint.add_argument("--reason", required=True)
    mint.add_argument("--journal", required=True, help="local append-only journal file")

    check = sub.add_parser("check", help="check one share without revealing it")
    _kit_options(check)

    rebuild = sub.add_parser("rebuild", help="reconstruction drill: rebuild, mint nothing")
    _kit_options(rebuild)
    rebuild.add_argument("--json", action="store_true")
    rebuild.add_argument("--challenge", help="from the game day page: prints a signed proof")
    return parser


def _kit_options(parser) -> None:
    parser.add_argument("--kit-file", required=True, help="kit.json from manage.py export_kit")
    parser.add_argument("--roots", help="roots.json: also check the kit's root signatures")
    parser.add_argument("--now", type=int, help=argparse_suppress())


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def _read_text(path: str, what: str) -> str:
    try:
        return _read_file(path, what).decode("utf-8")
    except UnicodeDecodeError:
        raise _Usage(f"{what} {path!a} is not UTF-8 text") from None


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(1024 * 1024)
    except OSError as exc:
        raise _Usage(f"cannot read {what} {path!a}: {exc.strerror}") from None


def _kit(args, now: int):
    roots = _read_file(args.roots, "roots file") if args.roots else None
    return kit_load(_read_file(args.kit_file, "kit file"), roots, now=now)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class ShareReader:
    """Shares one at a time: hidden prompts on a terminal (a refused share is asked for
    again), or one per line from a pipe (a refused share ends the run: exit 1)."""

    def __init__(self, kit, *, stream=None):
        self.kit = kit
        self.stream = stream or sys.stdin
        self.interactive = self.stream.isatty()
        self.position = 0

    def _line(self, prompt: str) -> str | None:
        if self.interactive:
            import getpass

            try:
                return getpass.getpass(prompt)
            except EOFError:
                return None
        line = self.stream.readline()
        return line if line else None

    def next(self, prompt: str):
        self.position += 1
        while True:
            text = self._line(prompt)
            if text is None:
                return None
            if not text.strip() and not self.interactive:
                continue
            try:
                return share_check(self.kit, text, position=self.position)
            except KitError as exc:
                if not self.interactive:
                    raise
                _say(f"  {exc}")  # at a terminal: say why, and ask for the same share again

    def shares(self, count: int) -> list:
        """`count` shares from distinct custodians; raise KitError when there are too few."""
        held: dict[int, object] = {}
        while len(held) < count:
            share = self.next(f"Share {len(held) + 1} of {count} (words, not shown): ")
            if share is None:
                raise KitError(
                    f"too few shares: {len(held)} of {count} needed for kit {self.kit.kit_id}",
                    "share_too_few",
                )
            if share.index in held:
                message = (
                    f"share {self.position} is {share.custodian}'s again (duplicate custodian); "
                    "another custodian's share is needed"
                )
                if not self.interactive:
                    raise KitError(message, "share_duplicate")
                _say(f"  {message}")
                continue
            held[share.index] = share
            _say(f"  share {self.position} accepted: {share.custodian}")
        return list(held.values())


def _create(args) -> int:
    from breakglass.core.kit import kit_key_split, kit_payload, kit_ssh_entries, share_digest

    now = int(time.time())
    policies = _ssh_policies(args.ssh_policy) if args.ssh_policy else []
    key, share_set, mnemonics = kit_key_split(custodians=args.custodian, threshold=args.threshold)
    payload = kit_payload(
        kit_id=args.kit,
        issuer=args.issuer,
        public_key=key.public_key(),
        audiences=args.audience,
        scopes=args.scope,
        max_lifetime=args.max_minutes * 60,
        threshold=args.threshold,
        custodians=[(n, share_digest(m)) for n, m in zip(args.custodian, mnemonics, strict=True)],
        share_set=share_set,
        not_before=now,
        not_after=now + args.valid_days * 86400,
        ssh=kit_ssh_entries(key, policies),
    )
    try:
        os.mkdir(args.shares_dir, 0o700)
    except OSError as exc:
        raise _Usage(
            f"cannot create {args.shares_dir!a} (it must not exist): {exc.strerror}"
        ) from None
    for number, (name, mnemonic) in enumerate(zip(args.custodian, mnemonics, strict=True), 1):
        page = share_page(
            kit_id=args.kit, custodian=name, number=number, payload=payload, mnemonic=mnemonic
        )
        path = os.path.join(args.shares_dir, f"share-{number}.txt")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
    document = {
        "payload": payload,
        "signatures": [],
        "check_keys": [check_key(m) for m in mnemonics],
    }
    with open(args.out, "x", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
    _say(
        f"kit {args.kit}: {args.threshold}-of-{len(args.custodian)} shares in "
        f"{args.shares_dir}/ (print each page, hand it to its custodian, then wipe the "
        f"directory). Next: have root holders sign {args.out} "
        "(python -m breakglass.core.signing sign), then manage.py kit_register."
    )
    return EXIT_OK


def _ssh_policies(path: str) -> list:
    from breakglass.core._parse import ParseError, json_decode

    try:
        document = json_decode(_read_file(path, "SSH policy file"), limit=1024 * 1024)
    except ParseError as exc:
        raise _Usage(f"SSH policy file {path!a} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("ssh"), list):
        raise _Usage(f"{path!a} is not an SSH policy file (manage.py export_ssh_policy)")
    return document["ssh"]


def share_page(*, kit_id: str, custodian: str, number: int, payload: dict, mnemonic: str) -> str:
    """The printable page for one custodian (console and CLI print the same text)."""
    words = mnemonic.split()
    rows = [
        " ".join(f"{i + 1:>2}. {w:<10}" for i, w in enumerate(words) if i // 5 == row)
        for row in range((len(words) + 4) // 5)
    ]
    return (
        f"BREAKGLASS SEALED KIT {kit_id} - share {number} of {len(payload['custodians'])}\n"
        f"Custodian: {custodian}\n"
        f"Any {payload['threshold']} shares rebuild the kit key. Covers: "
        f"{', '.join(payload['audiences'])} ({', '.join(payload['scopes'])})"
        + "".join(f", SSH path {entry['path']}" for entry in payload.get("ssh", []))
        + f"; credentials of at most {payload['max_lifetime'] // 60} minutes.\n"
        f"Kit key id: {payload['kid']}\n\n"
        + "\n".join(rows)
        + "\n\nKeep this page sealed and offline. Never type it into a website or a chat.\n"
        "Check it every quarter: breakglass kit check --kit-file kit.json\n"
        "Use it only with the runbook: docs/operations.md, 'Using the kit'.\n"
    )


def check_key(mnemonic: str) -> str:
    """The per-custodian secret the server keeps to verify check codes (not the share)."""
    import hashlib

    from breakglass.core.b64 import b64url_encode

    normal = " ".join(mnemonic.lower().split())
    return b64url_encode(hashlib.sha256(b"breakglass-kit-check\0" + normal.encode()).digest())


def check_code(kit, share, *, now: int) -> str:
    """A code the custodian pastes into the console: it proves the share was read at `now`
    without carrying the share (an HMAC under a key only the share and the server know)."""
    import hashlib
    import hmac

    message = f"{CHECK_CODE_PREFIX}.{kit.kit_id}.{share.index}.{now}"
    mac = hmac.new(
        check_key(share.mnemonic).encode(), message.encode(), hashlib.sha256
    ).hexdigest()[:32]
    return f"{message}.{mac}"


def _mint(args, now: int) -> int:
    from breakglass.core.kit import (
        journal_append,
        journal_record,
        kit_ssh_certificate,
        kit_ssh_claims,
        kit_token_claims,
        kit_token_mint,
    )

    ssh = _mint_kind(args) == "ssh"
    kit = _kit(args, now)
    if ssh:
        public_key = _read_text(args.ssh_public_key, "SSH public key")

        def claims_for(custodians: list[str]) -> dict:
            return kit_ssh_claims(
                kit,
                path=args.ssh_path,
                public_key=public_key,
                principals=args.principal or [],
                minutes=args.minutes,
                subject=args.subject,
                custodians=custodians,
                now=now,
            )
    else:

        def claims_for(custodians: list[str]) -> dict:
            return kit_token_claims(
                kit,
                audience=args.audience,
                scopes=args.scope,
                minutes=args.minutes,
                subject=args.subject,
                custodians=custodians,
                now=now,
            )

    # Refuse a request beyond the kit's policy before anyone types a share.
    claims_for([])
    if not args.reason.strip():
        raise KitError("--reason must say why (it goes into the journal and the review)")
    _say(f"kit {kit.kit_id}: {kit.threshold} of {len(kit.custodians)} shares needed")
    shares = ShareReader(kit).shares(kit.threshold)
    key = kit_key_rebuild(kit, shares)
    claims = claims_for([share.custodian for share in sorted(shares, key=lambda s: s.index)])
    credential = kit_ssh_certificate(kit, key, claims) if ssh else kit_token_mint(kit, key, claims)
    try:
        journal_append(
            args.journal,
            lambda prev: journal_record(kit, key, claims=claims, reason=args.reason, prev=prev),
        )
    except OSError as exc:
        # No journal line, no credential: every kit mint must be reviewable afterwards.
        raise _Usage(f"cannot append to journal {args.journal!a}: {exc.strerror}") from None
    if ssh:
        out = args.out or certificate_path(args.ssh_public_key)
        try:
            _write_certificate(out, credential)
        except _Usage:
            print(credential, flush=True)  # recorded in the journal: never lose it
            raise
        facts = claims["ssh"]
        _say(
            f"kit certificate for {claims['sub']} on {facts['path']} (principals "
            f"{', '.join(facts['principals'])}), valid {args.minutes} minutes, serial "
            f"{facts['serial']}, jti {claims['jti']}; written to {out}; recorded in "
            f"{args.journal}\nLog in: ssh -i <your private key> -o CertificateFile={out} "
            "<account>@<host>"
        )
    else:
        _say(
            f"kit token for {claims['sub']} on {claims['aud']} ({claims['scope']}), "
            f"valid {args.minutes} minutes, jti {claims['jti']}; recorded in {args.journal}"
        )
    print(credential, flush=True)
    return EXIT_OK


def _mint_kind(args) -> str:
    """ "token" or "ssh", from the options given; mixing the two is a usage error."""
    token = {"--audience": args.audience, "--scope": args.scope}
    ssh = {"--ssh-path": args.ssh_path, "--ssh-public-key": args.ssh_public_key}
    ssh_only = {"--principal": args.principal, "--out": args.out}
    given = [name for name, value in {**token, **ssh, **ssh_only}.items() if value]
    if any(ssh.values()) or any(ssh_only.values()):
        mixed = [name for name in given if name in token]
        missing = [name for name, value in ssh.items() if not value]
        if mixed or missing:
            raise _Usage(
                "an SSH certificate needs --ssh-path and --ssh-public-key"
                + (f", not {' or '.join(mixed)}" if mixed else "")
            )
        return "ssh"
    missing = [name for name, value in token.items() if not value]
    if missing:
        raise _Usage(
            "mint a token (--audience and --scope) or an SSH certificate "
            "(--ssh-path and --ssh-public-key)"
        )
    return "token"


def certificate_path(public_key_file: str) -> str:
    """Where ssh looks for a key's certificate: id_ed25519.pub -> id_ed25519-cert.pub."""
    return public_key_file.removesuffix(".pub") + "-cert.pub"


def _write_certificate(path: str, certificate: str) -> None:
    from breakglass.core.files import file_write_atomic

    try:
        file_write_atomic(path, (certificate + "\n").encode("ascii"), mode=0o644)
    except OSError as exc:
        raise _Usage(
            f"cannot write the certificate to {path!a}: {exc.strerror}; the mint is in the "
            "journal, and the certificate is on standard output"
        ) from None


def _check(args, now: int) -> int:
    kit = _kit(args, now)
    reader = ShareReader(kit)
    share = reader.next("Your share (words, not shown): ")
    if share is None:
        raise KitError("no share given", "share_too_few")
    _say(
        f"share OK: {share.custodian}'s share of kit {kit.kit_id} ({kit.threshold}-of-"
        f"{len(kit.custodians)}); paste this check code into the console:"
    )
    print(check_code(kit, share, now=now), flush=True)
    return EXIT_OK


def _rebuild(args, now: int) -> int:
    kit = _kit(args, now)
    started = time.monotonic()
    shares = ShareReader(kit).shares(kit.threshold)
    key = kit_key_rebuild(kit, shares)  # raises unless the rebuilt key is the kit's key
    if kit.ssh:
        from breakglass.core.kit import kit_ssh_ca

        for path in kit.ssh:
            kit_ssh_ca(kit, key, path)  # and each SSH path's CA is the one hosts trust
    seconds = round(time.monotonic() - started)
    people = [share.custodian for share in sorted(shares, key=lambda s: s.index)]
    proof = None
    if args.challenge:
        from breakglass.core.kit import rebuild_proof

        proof = rebuild_proof(
            kit, key, custodians=people, seconds=seconds, at=now, challenge=args.challenge
        )
    if args.json:
        print(
            json.dumps(
                {
                    "decision": "match",
                    "kit": kit.kit_id,
                    "kid": kit.kid,
                    "ssh_paths": list(kit.ssh),
                    "custodians": people,
                    "seconds": seconds,
                    "at": now,
                    **({"proof": proof} if proof else {}),
                },
                sort_keys=True,
            ),
            flush=True,
        )
    else:
        print(
            f"MATCH kit {kit.kit_id}: the key rebuilt from the shares of {', '.join(people)} "
            f"is the kit's key {kit.kid}"
            + (f" and gives its CAs for {', '.join(kit.ssh)}" if kit.ssh else "")
            + f" ({seconds} s); nothing was minted",
            flush=True,
        )
        if proof:
            print(f"Paste this proof into the game day page:\n{proof}", flush=True)
    return EXIT_OK


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        now = getattr(args, "now", None) or int(time.time())
        if args.command == "create":
            return _create(args)
        if args.command == "mint":
            return _mint(args, now)
        if args.command == "check":
            return _check(args, now)
        return _rebuild(args, now)
    except SystemExit as exc:  # --help
        return EXIT_OK if exc.code in (0, None) else EXIT_ERROR
    except _Usage as exc:
        _say(f"breakglass kit: {exc}")
        return EXIT_ERROR
    except KitError as exc:
        _say(f"REFUSED {exc.code}: {exc}")
        return EXIT_ERROR if exc.code == "usage" else EXIT_REFUSED
    except VerificationError as exc:
        _say(f"REFUSED {exc.code}: {exc}")
        return EXIT_REFUSED
    except ModuleNotFoundError as exc:
        if exc.name != "shamir_mnemonic":
            raise
        # e.g. the single-file verifier on a host: it verifies kit tokens but cannot mint.
        _say(
            "breakglass kit: this needs the shamir-mnemonic package "
            "(pip install breakglass, or pip install shamir-mnemonic)"
        )
        return EXIT_ERROR
    except FileExistsError as exc:
        _say(f"breakglass kit: {exc.filename} exists; refusing to overwrite it")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
