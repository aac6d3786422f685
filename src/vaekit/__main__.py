"""``python -m vaekit`` (also what ``torchrun -m vaekit`` runs)."""

from .cli import main

raise SystemExit(main())
