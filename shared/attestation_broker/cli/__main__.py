"""``python -m attestation_broker.cli``."""

from attestation_broker.cli import main

raise SystemExit(main())
