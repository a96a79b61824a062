"""Command line: ``python -m tools.gpconnect_simulator --port 8090 [--host 127.0.0.1]``."""

from __future__ import annotations

import argparse

from .data import ALICE, BOB, CAROL_CONFIDENTIAL, DAN_NO_CONSENT, NOT_FOUND, PROVIDER_ASID
from .server import SimulatorServer


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="GP Connect provider simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--prefix", default="", help="path prefix, e.g. /gpconnect/fhir")
    args = parser.parse_args(argv)
    server = SimulatorServer((args.host, args.port), prefix=args.prefix)
    print(f"GP Connect simulator on {server.base_url} (provider ASID {PROVIDER_ASID})")
    print(f"Test patients: {ALICE}, {BOB}; confidential items {CAROL_CONFIDENTIAL}; ", end="")
    print(f"no consent {DAN_NO_CONSENT}; not found {NOT_FOUND}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
