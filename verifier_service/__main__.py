"""``python -m verifier_service`` is the ``sieve-verifier`` command."""

from verifier_service.cli import main

if __name__ == "__main__":
    main()
