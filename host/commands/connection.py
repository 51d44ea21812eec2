"""Flags shared by every command that talks to one agent (--agent, --token-file, TLS), and the client they make."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from fleetnas.host.fleet.contract import DEFAULT_AGENT_PORT


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", required=True, metavar="HOST[:PORT]",
                        help=f"address of a running fleetnas-agent (port {DEFAULT_AGENT_PORT} when not given)")
    parser.add_argument("--token-file", type=Path, help="file holding the agent's bearer token")
    parser.add_argument("--tls-ca", type=Path, help="CA certificate that signed the agent's TLS certificate")
    parser.add_argument("--tls-cert", type=Path, help="client certificate, for agents that require mutual TLS")
    parser.add_argument("--tls-key", type=Path, help="client key, with --tls-cert")
    parser.add_argument("--tls-server-name", help="name in the agent's certificate, when it differs from HOST")


def agent_address(text: str) -> str:
    """HOST or HOST:PORT (IPv6 as [ADDR] or [ADDR]:PORT) -> HOST:PORT, with the agent's default port when none is
    given (gRPC would otherwise dial 443)."""
    if text.count(":") > 1 and not text.startswith("["):
        return f"[{text}]:{DEFAULT_AGENT_PORT}"     # a bare IPv6 address
    if text.endswith("]") or ":" not in text:
        return f"{text}:{DEFAULT_AGENT_PORT}"
    return text


def read_token(path: Optional[Path]) -> Optional[str]:
    from fleetnas.host.errors import UsageError
    if path is None:
        return None
    try:
        token = path.expanduser().read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {path}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"--token-file {path} is empty")
    return token


def client_from_args(args: argparse.Namespace):
    from fleetnas.host.errors import UsageError
    from fleetnas.host.fleet.client import AgentClient, ClientTls
    tls = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        if bool(args.tls_cert) != bool(args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together (mutual TLS)")
        tls = ClientTls(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name)
    return AgentClient(agent_address(args.agent), token=read_token(args.token_file), tls=tls)
